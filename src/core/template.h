// Judge prompt templates. A template is a text file (templates/*.txt) with placeholders:
//   {{conversation}}  the conversation: earlier turns then the query, each as "<Role>: <content>"
//   {{query}}         the last user turn only
//   {{responses}}     the response blocks "[The Begin of Response i]\n...\n[The End of Response i]" (1-based,
//                     in SHOWN order), separated by blank lines
//   {{n}}             the number of responses
//   {{score_min}} {{score_max}}  the score range
// Optional front-matter lines at the very top, each "%% key: value", set template options:
//   %% score_min: 0      %% score_max: 1      (default 1 and 10)
// Unknown placeholders and unknown keys are errors at load time, so a typo cannot silently ship.
// A template must contain {{responses}} and one of {{conversation}} / {{query}}.
#pragma once
#include <string>
#include <vector>

#include "core/score_range.h"
#include "core/types.h"

namespace grm {

class Template {
 public:
  // Parses template text; `name` is used in error messages (usually the file path).
  static Template from_string(const std::string& text, const std::string& name);
  static Template load(const std::string& path);
  // A template shipped with grm ("default", "compact", "single-binary"), looked up in $GRM_TEMPLATE_DIR,
  // then next to the executable (../templates, ../share/grm/templates), then the source tree.
  static Template builtin(const std::string& name);
  // The file of built-in template `name` (the first of $GRM_TEMPLATE_DIR, <exe>/../templates,
  // <exe>/../share/grm/templates, the source tree that has it). Throws grm::Error when none has it.
  static std::string builtin_path(const std::string& name);
  // `spec` is a builtin name or a path to a file (anything containing '/' or ending in .txt).
  static Template resolve(const std::string& spec);

  // Renders the prompt for `shown` responses (already in shown order).
  std::string render(const Conversation& conv, const std::vector<std::string>& shown) const;

  const std::string& name() const { return name_; }
  ScoreRange range() const { return range_; }

 private:
  struct Piece {
    bool is_placeholder;
    std::string text;  // literal text, or the placeholder name
  };
  std::string name_;
  ScoreRange range_{};
  std::vector<Piece> pieces_;
};

// "[The Begin of Response i]" blocks for the responses in shown order.
std::string render_response_blocks(const std::vector<std::string>& shown);
// The conversation as "User: ...\n\nAssistant: ...\n\nUser: <query>".
std::string render_conversation(const Conversation& conv);

}  // namespace grm
