"""The editors' review desk (`vlcurate review`): the queue, the decisions log, the web app, applying
decisions to the dataset and the Label Studio round trip."""
