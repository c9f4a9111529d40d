import Synchronization

#if NETEVENTS_TSAN
import Glibc

/// A value guarded by a lock, in a build for the thread sanitizer (`-DNETEVENTS_TSAN`): a
/// `pthread_mutex_t`, whose locking TSan sees. It does not see `Synchronization.Mutex`'s (Swift
/// 6.3 on Linux), and reports every access under one as a race.
package final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// A lock guarding `value`.
    package init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
#else
/// A value guarded by a lock: the standard library's `Mutex`. The package names it through this
/// alias so that a build for the thread sanitizer (`-DNETEVENTS_TSAN`, `scripts/soak --tsan`)
/// can put a lock TSan sees in its place.
package typealias Locked<Value: ~Copyable> = Mutex<Value>
#endif
