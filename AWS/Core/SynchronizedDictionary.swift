import Synchronization

/// A small dictionary behind a lock, emptied when it reaches its capacity (caches of derived values).
final class SynchronizedDictionary<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let storage = Mutex<[Key: Value]>([:])

    subscript(key: Key) -> Value? { storage.withLock { $0[key] } }

    func insert(_ value: Value, for key: Key, capacity: Int) {
        storage.withLock { storage in
            if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
            storage[key] = value
        }
    }
}
