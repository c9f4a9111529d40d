import Synchronization

#if NETEVENTS_TSAN
import Glibc

/// A value guarded by a lock, in a build for the thread sanitizer (`-DNETEVENTS_TSAN`): a
/// `pthread_mutex_t`, whose locking TSan sees. It does not see `Synchronization.Mutex`'s (Swift
/// 6.3 on Linux), and reports every access under one as a race.
package final class Locked<Value>: @unchecked Sendable {
    // Both in storage of their own, reached through `let`s: TSan's Swift access checks took an
    // access to a stored `var` for one to the object itself, so the read of the mutex before
    // locking it looked like a race with the value's last change under the lock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    /// A lock guarding `value`.
    package init(_ value: consuming Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
#else
/// A value guarded by a lock: the standard library's `Mutex`. The package names it through this
/// alias so that a build for the thread sanitizer (`-DNETEVENTS_TSAN`, `scripts/soak --tsan`)
/// can put a lock TSan sees in its place.
package typealias Locked<Value: ~Copyable> = Mutex<Value>
#endif
