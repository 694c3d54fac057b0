"""nifti-import's defaults, in a module without imports so that building the command line stays
light (``xnatnode --help`` and ``build.sh`` import every command's flags)."""

DEFAULT_SUBJECT_TEMPLATE = "{sub}"
DEFAULT_SESSION_TEMPLATE = "{sub}_{ses}_{modality}"
TEMPLATE_FIELDS = ("sub", "ses", "modality", "datatype")
#: Scan resource of the images, and of the .json/.bval/.bvec/.tsv sidecars.
DEFAULT_IMAGE_RESOURCE = "NIFTI"
DEFAULT_SIDECAR_RESOURCE = "BIDS"
