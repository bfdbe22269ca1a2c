// The rolling restart's steps, from the instances' state changes alone.
#include "rollout.h"

namespace vigil {

Rollout::Rollout(std::uint64_t id, std::vector<int> order, std::string program)
    : id_(id), order_(std::move(order)), program_(std::move(program)) {}

std::string Rollout::label(int index) const {
  return program_ + "[" + std::to_string(index) + "]";
}

Rollout::Verdict Rollout::begin() {
  if (order_.empty()) {
    finished_ = true;
    return Verdict::completed;
  }
  return Verdict::next;
}

Rollout::Verdict Rollout::on_state(int index, State from, State to) {
  if (finished_ || position_ >= order_.size() || index != order_[position_]) return Verdict::wait;
  // The restart asked for stops the old process (running -> stopping ->
  // starting) or, from backoff, exited, fatal or stopped, starts at once:
  // either way the new process begins with `starting`.
  if (!started_) {
    if (to == State::starting) started_ = true;
    return Verdict::wait;
  }
  if (from != State::starting) return Verdict::wait;
  if (to == State::running) {
    ++position_;
    started_ = false;
    if (position_ < order_.size()) return Verdict::next;
    finished_ = true;
    return Verdict::completed;
  }
  // It exited, failed to start, timed out (stopping for start_timeout) or
  // was stopped: the rest keep their old processes.
  std::string rest;
  const std::size_t left = order_.size() - position_ - 1;
  for (std::size_t i = position_ + 1; i < order_.size(); ++i)
    rest += (rest.empty() ? "" : ", ") + label(order_[i]);
  error_ = "rolling restart stopped at " + label(index) + ": its new process did not become ready (" +
           to_string(to) + ")";
  if (left == 1) error_ += "; " + rest + " keeps its previous process";
  if (left > 1) error_ += "; " + rest + " keep their previous processes";
  finished_ = true;
  return Verdict::failed;
}

void Rollout::cancel(const std::string& why) {
  if (finished_) return;
  finished_ = true;
  error_ = "rolling restart cancelled: " + why;
}

std::optional<int> Rollout::current() const {
  if (finished_ || position_ >= order_.size()) return std::nullopt;
  return order_[position_];
}

RolloutSnapshot Rollout::snapshot() const {
  RolloutSnapshot s;
  s.id = id_;
  s.in_progress = !finished_;
  s.done = static_cast<int>(position_);
  s.total = static_cast<int>(order_.size());
  s.current = current();
  s.error = error_;
  return s;
}

}  // namespace vigil
