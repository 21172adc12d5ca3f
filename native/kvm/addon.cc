// kvm addon: placeholder until the KVM bindings land.
#include <napi.h>
Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }
NODE_API_MODULE(kvm, Init)
