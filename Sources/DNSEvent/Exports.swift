// Importing an event kind brings the monitor core and the BCC binding with it (BPFError,
// EventMonitor, IPAddress...): a program needs no other import.
@_exported import NetEventsCore
