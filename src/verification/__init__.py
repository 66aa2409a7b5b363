"""Speaker verification: detection metrics, objectives and enrolment (``task=speaker_verification``)."""
