"""Pure torch modules (scvi-tools ``BaseModuleClass`` subclasses and building blocks)."""
