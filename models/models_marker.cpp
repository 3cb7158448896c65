// Placeholder translation unit so the models library always has a source.
namespace cuvae { int models_library_marker() { return 0; } }
