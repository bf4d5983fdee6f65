"""What the MONAI Label companion's tests share (images/monailabel/, docs/monailabel.md)."""

IMAGE = "slicerhub/monailabel:dev"
TASK = "Histogram+GraphCut"
# The radiology app with labels {spleen: 1}: MONAI Label reads background
# scribbles as len(labels) + 1, foreground as len(labels) + 2
# (monailabel.scribbles.infer.ScribblesLikelihoodInferTask).
BG_SCRIBBLE, FG_SCRIBBLE = 2, 3
