// GET /internal/dead-letters: the requests Sluice gave up on (see
// core/dead_letter_queue.h), newest first.
#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "http/front_door.h"

namespace sluice::http {

namespace json = boost::json;

namespace {
// The value of `name` in the query string of `target`, or "".
std::string_view QueryParam(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}
}  // namespace

void FrontDoor::HandleDeadLetters(const HttpRequest& request, Reply& reply) {
  constexpr size_t kDefaultLimit = 100;
  size_t limit = kDefaultLimit;
  std::string_view text = QueryParam(request.target(), "limit");
  if (!text.empty()) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || end != text.data() + text.size() || limit == 0) {
      reply(MakeError(request, InvalidArgument("limit: expected a positive integer, got \"" +
                                               std::string(text) + "\"")));
      return;
    }
  }
  options_.dead_letters->ReadNewest(
      limit, [shape = ReplyShape(request), reply = std::move(reply)](Result<DeadLetterPage> page) {
        if (!page.ok()) {
          reply(MakeError(shape, Unavailable("the dead-letter list is unavailable")));
          return;
        }
        json::array entries;
        for (const DeadLetter& d : page->entries) {
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.at.time_since_epoch());
          entries.push_back(json::object{{"request_id", d.request_id},
                                         {"model", d.model},
                                         {"key_id", d.key_id},
                                         {"tier", d.tier},
                                         {"input", d.input},
                                         {"input_truncated", d.input_truncated},
                                         {"attempts", d.attempts},
                                         {"last_error", d.last_error},
                                         {"last_backend", d.last_backend},
                                         {"at_unix_ms", ms.count()}});
        }
        json::object body{{"size", page->size},
                          {"total", page->total},
                          {"dropped", page->dropped},
                          {"entries", std::move(entries)}};
        reply(MakeResponse(shape, 200, json::serialize(body)));
      });
}

}  // namespace sluice::http
