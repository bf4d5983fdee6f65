"""DICOM for the imaging feature: synthetic series (synth) and DICOMweb storage (stow)."""
