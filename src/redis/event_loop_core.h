// EventLoopConnection::Core: the state an EventLoopConnection shares with
// the handlers it leaves on its io_context (they hold it by shared_ptr, so a
// handler that runs after the connection is gone finds it closed). Internal
// to event_loop_connection.cc (the callers' side: submitting, closing) and
// event_loop_core.cc (the socket's side: connecting, writing, reading).
//
// Threading: the methods under "Any thread" may be called from anywhere;
// everything else, and every member marked "Strand only", runs on strand_.
#pragma once

#include <hiredis/read.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "redis/event_loop_connection.h"

namespace sluice::redis {

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

class EventLoopConnection::Core : public std::enable_shared_from_this<Core> {
 public:
  using tcp = boost::asio::ip::tcp;
  using SteadyTime = std::chrono::steady_clock;
  using milliseconds = std::chrono::milliseconds;

  Core(boost::asio::io_context& ioc, const Options& options)
      : o_(options),
        ioc_(ioc),
        strand_(boost::asio::make_strand(ioc)),
        socket_(strand_),
        resolver_(strand_),
        connect_timer_(strand_),
        reply_timer_(strand_),
        retry_timer_(strand_),
        health_timer_(strand_),
        backoff_ms_(options.reconnect_initial_backoff_ms) {}

  // Any thread.
  void Submit(std::vector<std::string> argv, ReplyCallback done);
  void RunScript(const LuaScript& script, std::vector<std::string> argv, ReplyCallback done);
  State state() const { return state_.load(std::memory_order_acquire); }
  bool WaitUntilUp(milliseconds timeout) {
    std::unique_lock lock(state_mu_);
    return state_cv_.wait_for(lock, timeout, [&] { return state() == State::kUp; });
  }
  Stats stats() const;
  // On a thread running the io_context (our strand or any other handler).
  bool InLoop() const { return ioc_.get_executor().running_in_this_thread(); }
  boost::asio::io_context& ioc() { return ioc_; }
  const boost::asio::strand<boost::asio::io_context::executor_type>& strand() const {
    return strand_;
  }

  // On the strand.
  void Connect();
  // Closes for good; fails what is queued or in flight. Idempotent.
  void Close();
  // Any thread: Close() if no handler of ours has run yet (the loop never
  // ran Connect()), in which case it returns true and no handler ever will.
  bool CloseIfUnstarted();

 private:
  enum class Kind {
    kUser,       // a caller's command: its reply goes to `done`
    kHandshake,  // AUTH / CLIENT SETNAME / SCRIPT LOAD while connecting
    kQuiet,      // SCRIPT LOAD ahead of an EVALSHA, an idle PING: reply dropped
  };
  struct Command {
    std::vector<std::string> argv;
    ReplyCallback done;
    Kind kind = Kind::kUser;
  };
  struct Waiting {
    ReplyCallback done;
    Kind kind = Kind::kUser;
    std::string name;  // the command, for a refused handshake
  };

  // Checks the state and the queue bound, then puts `c` — preceded by
  // `script`'s SCRIPT LOAD the first time it is seen — in the inbox, which
  // is drained at once on the strand, else by one post per burst.
  void Enqueue(Command c, const LuaScript* script = nullptr);
  void DrainInbox();      // strand: queues the inbox in order
  void Queue(Command c);  // strand; a kUser `c` was counted in queued_users_
  void OnConnected(uint64_t gen);
  void Handshake();
  void BecomeUp();
  void WriteQueued();
  void StartWrite(size_t commands, uint64_t gen);
  void Read();
  void OnRead(const boost::system::error_code& ec, size_t n, uint64_t gen);
  void OnReply(RedisReply reply);
  // Closes the socket, fails what waits and schedules the next connect: at
  // once after losing a connection the server had answered on, else after
  // the backoff (which doubles up to its max).
  void Fail(const std::string& why);
  void FailAll(const Status& status);
  void ArmReplyTimer();
  void ArmHealthTimer();
  void SetState(State s);
  void Deliver(ReplyCallback& done, ReplyResult reply);
  std::string Where() const { return o_.host + ":" + std::to_string(o_.port); }

  const Options o_;
  boost::asio::io_context& ioc_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;

  // Strand only.
  tcp::socket socket_;
  tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_, reply_timer_, retry_timer_, health_timer_;
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
  std::array<char, 16 * 1024> in_{};
  std::string out_;              // the write in flight
  std::deque<Command> queued_;   // not written yet
  std::deque<Waiting> waiting_;  // written, replies due in this order
  uint64_t gen_ = 0;  // bumped per connect attempt and failure; stale handlers see another
  bool writing_ = false;
  bool up_ = false;
  bool connected_before_ = false;
  bool connecting_ = false;  // between Connect() and OnConnected() or Fail()
  bool answered_ = false;    // a reply (not a refused handshake) since Connect()
  size_t handshake_left_ = 0;
  int64_t backoff_ms_;
  SteadyTime::time_point last_activity_{};

  std::atomic<State> state_{State::kConnecting};
  // kUnstarted until Connect() first runs (kStarted) or the connection is
  // closed before that (kClosedUnstarted); see CloseIfUnstarted().
  static constexpr int kUnstarted = 0, kStarted = 1, kClosedUnstarted = 2;
  std::atomic<int> phase_{kUnstarted};
  std::atomic<bool> closing_{false};     // set once, by Close()
  std::atomic<size_t> queued_users_{0};  // kUser commands submitted, not yet written or failed
  std::mutex state_mu_;
  std::condition_variable state_cv_;
  // Commands submitted and not yet queued (Enqueue(), DrainInbox()).
  std::mutex inbox_mu_;
  std::vector<Command> inbox_;  // GUARDED_BY(inbox_mu_)
  mutable std::mutex scripts_mu_;
  std::map<std::string, std::string> scripts_;  // GUARDED_BY(scripts_mu_); sha1 -> body

  ConnectionCounters counters_;
};

}  // namespace sluice::redis
