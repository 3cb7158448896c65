// Placeholder translation unit so the layers library always has a source.
namespace cuvae { int layers_library_marker() { return 0; } }
