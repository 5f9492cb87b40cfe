"""The sample contract: the Sample record and its tar members (sample), reject reasons and rows (rejects), the one image decoder (images), and the resize modes of image-caption pairs (resize)."""
