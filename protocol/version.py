# The release of the whole product (firmware, protocol, host); the birth frame carries it.
RELEASE = "0.1.0"
