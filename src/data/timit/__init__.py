"""TIMIT: data module, reader, phone sets and foldings, offline corpus generator in TIMIT's format."""
