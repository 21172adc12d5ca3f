// Getting a vCPU thread out of KVM_RUN from another thread. The kicker sets
// kvm_run.immediate_exit (so a thread about to enter KVM_RUN returns -EINTR
// at once) and then sends kKickSignal to the vCPU thread (so one already
// inside KVM_RUN leaves it with -EINTR). The signal's handler does nothing:
// its only job is to interrupt the ioctl. A real-time signal is used because
// Node takes SIGUSR1 for its inspector.
#include "kvm.h"

#include <csignal>
#include <mutex>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace xdpvm {
namespace {

int KickSignal() { return SIGRTMIN + 4; }

void NoopHandler(int) {}

std::once_flag installed;
int installError = 0;

// No SA_RESTART: a blocking epoll_wait in the same thread also returns EINTR.
void InstallHandler() {
  struct sigaction sa {};
  sa.sa_handler = NoopHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  if (sigaction(KickSignal(), &sa, nullptr) != 0) installError = errno;
}

// vcpuThreadId() -> this thread's tid, with the kick signal unblocked here.
Napi::Value VcpuThreadId(const Napi::CallbackInfo& info) {
  if (installError != 0) throw ErrnoError(info.Env(), "sigaction(kick signal)", installError);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  int err = pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (err != 0) throw ErrnoError(info.Env(), "pthread_sigmask", err);
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// kickThread(tid) -> 0, or -errno (-ESRCH once that thread has gone).
Napi::Value KickThread(const Napi::CallbackInfo& info) {
  int tid = ArgInt(info, 0, "tid");
  if (tid <= 0) throw Napi::RangeError::New(info.Env(), "bad thread id");
  long r = syscall(SYS_tgkill, getpid(), tid, KickSignal());
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

}  // namespace

void InitKick(Napi::Env env, Napi::Object exports) {
  std::call_once(installed, InstallHandler);
  exports.Set("vcpuThreadId", Napi::Function::New(env, VcpuThreadId));
  exports.Set("kickThread", Napi::Function::New(env, KickThread));
  exports.Set("kickSignal", Napi::Number::New(env, KickSignal()));
}

}  // namespace xdpvm
