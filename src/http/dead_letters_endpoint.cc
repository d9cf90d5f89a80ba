// GET /internal/dead-letters: the requests Sluice gave up on (see
// core/dead_letter_queue.h), newest first.
#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "http/front_door.h"
#include "http/task_codec.h"

namespace sluice::http {

namespace json = boost::json;

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
