// libevent wrappers. Trampolines catch everything: a throwing callback is a
// bug, logged and counted, never a crash of the loop.
#include "event_loop.h"

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <stdexcept>

namespace vigil {

namespace {

std::uint64_t g_callback_errors = 0;

timeval to_timeval(Duration d) {
  if (d.count() < 0) d = Duration(0);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

template <typename F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    ++g_callback_errors;
    spdlog::error("internal error in {} callback: {}", what, e.what());
  } catch (...) {
    ++g_callback_errors;
    spdlog::error("internal error in {} callback: unknown exception", what);
  }
}

}  // namespace

std::uint64_t EventLoop::callback_errors() { return g_callback_errors; }

EventLoop::EventLoop() {
  event_config* cfg = event_config_new();
  // Timers must be precise to the millisecond for backoff and deadlines.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base_) throw std::runtime_error("cannot create the event loop (event_base_new)");
  deferred_event_ = event_new(base_, -1, 0, &EventLoop::on_deferred, this);
}

EventLoop::~EventLoop() {
  event_free(deferred_event_);
  event_base_free(base_);
}

void EventLoop::run() { event_base_dispatch(base_); }

void EventLoop::exit() { event_base_loopbreak(base_); }

bool EventLoop::run_until(const std::function<bool()>& pred, Duration timeout, Duration poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A persistent poll event guarantees a wake-up even when nothing happens.
  timeval tv = to_timeval(poll);
  event* tick = event_new(base_, -1, EV_PERSIST, [](int, short, void*) {}, nullptr);
  event_add(tick, &tv);
  bool ok = pred();
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    event_base_loop(base_, EVLOOP_ONCE);
    ok = pred();
  }
  event_free(tick);
  return ok;
}

void EventLoop::defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
  event_active(deferred_event_, EV_TIMEOUT, 0);
}

void EventLoop::on_deferred(int, short, void* arg) {
  auto* self = static_cast<EventLoop*>(arg);
  // Take the current batch; calls deferred from inside run on the next turn.
  std::deque<std::function<void()>> batch;
  batch.swap(self->deferred_);
  for (auto& fn : batch) guarded("deferred", fn);
  if (!self->deferred_.empty()) event_active(self->deferred_event_, EV_TIMEOUT, 0);
}

Timer::Timer(EventLoop& loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  ev_ = evtimer_new(loop.base(), &Timer::trampoline, this);
}

Timer::~Timer() { event_free(ev_); }

void Timer::arm(Duration after) {
  timeval tv = to_timeval(after);
  evtimer_add(ev_, &tv);
}

void Timer::cancel() { evtimer_del(ev_); }

bool Timer::armed() const { return evtimer_pending(ev_, nullptr); }

void Timer::trampoline(int, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  guarded("timer", self->on_fire_);
}

IoEvent::IoEvent(EventLoop& loop, int fd, short events, std::function<void(short)> on_ready)
    : on_ready_(std::move(on_ready)) {
  ev_ = event_new(loop.base(), fd, static_cast<short>(events | EV_PERSIST), &IoEvent::trampoline,
                  this);
}

IoEvent::~IoEvent() { event_free(ev_); }

void IoEvent::enable() {
  if (!enabled_) event_add(ev_, nullptr);
  enabled_ = true;
}

void IoEvent::disable() {
  if (enabled_) event_del(ev_);
  enabled_ = false;
}

void IoEvent::activate(short what) { event_active(ev_, what, 0); }

void IoEvent::trampoline(int, short what, void* arg) {
  auto* self = static_cast<IoEvent*>(arg);
  guarded("io", [&] { self->on_ready_(what); });
}

SignalEvent::SignalEvent(EventLoop& loop, int signo, std::function<void()> on_signal, Deliveries deliveries)
    : on_signal_(std::move(on_signal)) {
  if (deliveries == Deliveries::coalesced) once_ = event_new(loop.base(), -1, 0, &SignalEvent::fire, this);
  ev_ = evsignal_new(loop.base(), signo, &SignalEvent::trampoline, this);
  event_add(ev_, nullptr);
}

SignalEvent::~SignalEvent() {
  event_free(ev_);
  if (once_) event_free(once_);
}

void SignalEvent::trampoline(int, short, void* arg) {
  auto* self = static_cast<SignalEvent*>(arg);
  // An event already active is not queued again: it runs once, later in
  // this same turn (libevent runs what is activated while it runs the
  // active queue).
  if (self->once_)
    event_active(self->once_, EV_SIGNAL, 0);
  else
    guarded("signal", self->on_signal_);
}

void SignalEvent::fire(int, short, void* arg) {
  auto* self = static_cast<SignalEvent*>(arg);
  guarded("signal", self->on_signal_);
}

}  // namespace vigil
