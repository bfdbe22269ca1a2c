// RAII over one libevent event_base: the loop, one-shot timers, fd events,
// signals as events, and deferred calls. Every event unregisters in its
// destructor; every callback runs inside a trampoline that catches and logs,
// so no exception crosses libevent's C frames.
#pragma once
#include <chrono>
#include <deque>
#include <functional>
#include <memory>

#include "units.h"

struct event_base;
struct event;

namespace vigil {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() const { return base_; }

  // Runs until exit() is called or nothing is left to wait for.
  void run();
  void exit();

  // Runs the loop until pred() is true or `timeout` passes; pred is checked
  // after every loop turn and at least every `poll` (for conditions outside
  // the loop, such as a file appearing). Returns pred().
  bool run_until(const std::function<bool()>& pred, Duration timeout,
                 Duration poll = std::chrono::milliseconds(5));

  // Calls fn on the next loop turn, outside the current callback's stack
  // (deferred deletion of objects that end in their own callback).
  void defer(std::function<void()> fn);

  // Count of exceptions caught in callbacks (each is also logged).
  static std::uint64_t callback_errors();

 private:
  static void on_deferred(int, short, void* arg);
  event_base* base_ = nullptr;
  event* deferred_event_ = nullptr;
  std::deque<std::function<void()>> deferred_;
};

// A one-shot timer, re-armed as needed (one deadline per concern).
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> on_fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(Duration after);  // replaces any pending deadline
  void cancel();
  bool armed() const;

 private:
  static void trampoline(int, short, void* arg);
  event* ev_ = nullptr;
  std::function<void()> on_fire_;
};

// Readiness on an fd. `events` is EV_READ and/or EV_WRITE, optionally
// EV_ET (edge-triggered: registered once, told only of new readiness);
// persistent.
class IoEvent {
 public:
  IoEvent(EventLoop& loop, int fd, short events, std::function<void(short)> on_ready);
  ~IoEvent();
  IoEvent(const IoEvent&) = delete;
  IoEvent& operator=(const IoEvent&) = delete;

  void enable();
  void disable();
  bool enabled() const { return enabled_; }
  // Runs the callback with `what` on the next loop turn, as if the fd were
  // ready (an edge-triggered reader that stopped early to yield).
  void activate(short what);

 private:
  static void trampoline(int, short what, void* arg);
  event* ev_ = nullptr;
  bool enabled_ = false;
  std::function<void(short)> on_ready_;
};

// A signal delivered as an ordinary loop event; no app code in a handler.
// libevent calls once per delivery; `coalesced` makes the deliveries that
// came in before the loop got to them one call (SIGCHLD: one reap serves
// every exit, and each extra waitpid scans all of vigil's children).
class SignalEvent {
 public:
  enum class Deliveries { each, coalesced };
  SignalEvent(EventLoop& loop, int signo, std::function<void()> on_signal,
              Deliveries deliveries = Deliveries::each);
  ~SignalEvent();
  SignalEvent(const SignalEvent&) = delete;
  SignalEvent& operator=(const SignalEvent&) = delete;

 private:
  static void trampoline(int, short, void* arg);
  static void fire(int, short, void* arg);
  event* ev_ = nullptr;
  event* once_ = nullptr;  // coalesced: activated by each delivery, runs once
  std::function<void()> on_signal_;
};

}  // namespace vigil
