"""The PACS gateway (DICOMweb) and "Open in SlicerHub" links."""
