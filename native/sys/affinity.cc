// Thread CPU affinity: pins the calling thread (a vCPU or an I/O worker), or
// another thread or process by id (a hosted vCPU's process), to a set of host
// CPUs, as QEMU/Firecracker users pin vCPU and I/O threads.
#include "sys.h"

#include <sched.h>

namespace xdpvm {
namespace {

// setThreadAffinity(cpus: number[], tid = 0: the calling thread) -> 0 or -errno (EINVAL: no CPU of the set is online).
Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "expected an array of CPU numbers");
  Napi::Array cpus = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < cpus.Length(); i++) {
    Napi::Value v = cpus.Get(i);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "CPU numbers must be numbers");
    int64_t cpu = v.As<Napi::Number>().Int64Value();
    if (cpu < 0 || cpu >= CPU_SETSIZE) throw Napi::RangeError::New(env, "CPU number out of range");
    CPU_SET(static_cast<int>(cpu), &set);
  }
  pid_t tid = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    tid = static_cast<pid_t>(ArgInt(info, 1, "tid"));
    if (tid < 0) throw Napi::RangeError::New(env, "tid must be >= 0");
  }
  if (sched_setaffinity(tid, sizeof set, &set) != 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

}  // namespace

void InitAffinity(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadAffinity", Napi::Function::New(env, SetThreadAffinity));
}

}  // namespace xdpvm
