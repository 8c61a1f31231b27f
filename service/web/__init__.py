"""The oracle's pages and the campaign API they (and the SAMP listener) talk to."""
