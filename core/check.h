// Error type and check macros shared by every part of cuvae.
#pragma once

#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace cuvae {

/// How the options a message names are written: as the job's field (`epochs`, `data_dir`: what
/// what() shows, and what the dashboard's API answers with) or as the command line's flag
/// (`--epochs`, `--data-dir`).
enum class FieldStyle { Name, Flag };

/// An option of a job named in an error message: `CUVAE_FAIL(option("batch") << " must be …")`.
/// The message carries the field's name between two U+001F marks, and each front end writes it
/// in its own words (Error::message).
struct OptionName {
  const char* name;  ///< the field of the job's options struct, snake_case
};
/// The option `name` (a field of a job's options struct) for an error message.
inline OptionName option(const char* name) { return OptionName{name}; }
/// Writes the marked field name.
inline std::ostream& operator<<(std::ostream& os, OptionName f) { return os << '\x1f' << f.name << '\x1f'; }

/// `raw` with every marked option written in `style`: `epochs` or `--epochs` (underscores
/// become dashes in a flag).
inline std::string render_options(const std::string& raw, FieldStyle style) {
  std::string out;
  out.reserve(raw.size() + 8);
  bool in_name = false;
  for (char c : raw) {
    if (c == '\x1f') {
      in_name = !in_name;
      if (in_name && style == FieldStyle::Flag) out += "--";
      continue;
    }
    out += (in_name && style == FieldStyle::Flag && c == '_') ? '-' : c;
  }
  return out;
}

/// The one exception type cuvae throws for bad input, failed library calls and
/// violated preconditions. `what()` is a single line that names the problem, options by their
/// field names; message(FieldStyle::Flag) names them as command-line flags.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(render_options(msg, FieldStyle::Name)), raw_(msg) {}
  /// The message with the options it names written in `style`.
  std::string message(FieldStyle style) const { return render_options(raw_, style); }

 private:
  std::string raw_;
};

namespace detail {
[[noreturn]] inline void throw_check(const char* file, int line, const char* expr,
                                     const std::string& msg) {
  std::ostringstream os;
  os << msg << " [" << expr << " failed at " << file << ":" << line << "]";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace cuvae

/// Throws cuvae::Error with `msg` (a stream expression) plus file:line and the
/// failing condition when `cond` is false. Use for preconditions on sizes/shapes.
#define CUVAE_CHECK(cond, msg)                                             \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::ostringstream cuvae_check_os_;                                  \
      cuvae_check_os_ << msg;                                              \
      ::cuvae::detail::throw_check(__FILE__, __LINE__, #cond,              \
                                   cuvae_check_os_.str());                 \
    }                                                                      \
  } while (0)

/// Throws cuvae::Error with `msg` (a stream expression) and nothing else when `cond` is false:
/// for requirements on user input (flags, files, data) whose message names the flag, file or
/// field and what was expected. Broken internal invariants use CUVAE_CHECK (which adds file:line).
#define CUVAE_REQUIRE(cond, msg)                                           \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::ostringstream cuvae_require_os_;                                \
      cuvae_require_os_ << msg;                                            \
      throw ::cuvae::Error(cuvae_require_os_.str());                       \
    }                                                                      \
  } while (0)

/// Throws cuvae::Error with `msg` (a stream expression) and nothing else: for
/// user-facing input errors whose message already names the file/flag/field.
#define CUVAE_FAIL(msg)                                                    \
  do {                                                                     \
    std::ostringstream cuvae_fail_os_;                                     \
    cuvae_fail_os_ << msg;                                                 \
    throw ::cuvae::Error(cuvae_fail_os_.str());                            \
  } while (0)
