"""The sample contract: the Sample record and its tar members (sample), reject reasons and rows (rejects), and the one image decoder (images)."""
