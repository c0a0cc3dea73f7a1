"""The WIT contract between operator authors and the engine, and the check of a component against it."""
