# The signing key of the settings that tests build (the app refuses one under 32 bytes).
SECRET_KEY = "a signing key for the test suite, not for use"
