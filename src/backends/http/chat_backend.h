// ChatBackend: one connection slot to a model server that speaks OpenAI's
// chat API (POST /v1/chat/completions) — the `openai` backend kind with
// `openai_api: chat`. Chat servers batch internally and take one
// conversation per call, so each RunBatch() carries exactly one request
// (the model's max_batch_size is 1): Sluice still queues it by tier and
// deadline, and the model's slots (endpoints x connections_per_endpoint)
// bound the calls in flight per endpoint.
//
// The call always asks for a stream (stream: true, with usage): each piece
// of text is handed to the request's on_piece as it arrives (time to first
// token is the server's), and the whole text is the item's output.
// tokens_used is prompt + completion tokens from the server's usage when it
// reports them, else the estimate. The messages are those the request
// carries in its parameters ("messages", set by POST /v1/chat/completions);
// a request without them (POST /v1/inference) is sent as one user message.
//
// A request whose client went away (InferenceRequest::cancelled()) while its
// answer streams is abandoned at the next piece: the connection is closed,
// which cancels the call at the server, and the item fails with kCancelled
// (an item error: it counts against no breaker).
//
// Errors and threading as HttpBackend (http_backend.h). request_timeout_ms
// bounds each wait for more of the stream. Until the first piece reaches a
// listening client, the request's deadlines and the model's
// accelerator_timeout_ms apply as to any batch; from then on the request is
// streaming (InferenceRequest::MarkStreaming): it runs to its end, is never
// retried, and a failure is reported to its client as an error event.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "backends/http/http_backend.h"

namespace sluice::http_backend {

class ChatBackend final : public Backend {
 public:
  // HttpBackend's options; `protocol` is ignored.
  static Result<std::unique_ptr<ChatBackend>> Create(const HttpBackend::Options& options);
  ~ChatBackend() override;
  ChatBackend(const ChatBackend&) = delete;
  ChatBackend& operator=(const ChatBackend&) = delete;

  // REQUIRES: batch.size() == 1 (else the batch fails with kInternal).
  void RunBatch(const std::vector<RequestPtr>& batch, DoneFn done) override;
  const std::string& name() const override { return name_; }

 private:
  ChatBackend(const HttpBackend::Options& options, std::string target,
              std::unique_ptr<HttpConnection> connection);

  const HttpBackend::Options options_;
  const std::string name_;
  const std::string target_;                    // base path + "/v1/chat/completions"
  const std::shared_ptr<SlotConnection> link_;  // shared with the call in flight
  std::shared_ptr<std::atomic<bool>> busy_;     // shared with the call in flight
};

// The `data:` payloads of the complete server-sent events at the start of
// `buffer`, which loses them (a partial event stays for the next read).
// Lines other than "data: ..." (comments, event names) are skipped.
std::vector<std::string> TakeSseData(std::string& buffer);

}  // namespace sluice::http_backend
