// A program that imports an event kind (TCPEvent, UDPEvent) sees the whole vocabulary it needs
// without further imports: this module, re-exported by each kind, re-exports the BCC binding,
// so `BPFError`, `KernelHeaders` and `SampleTransport` are in scope after `import TCPEvent`.
@_exported import BCCRuntime
