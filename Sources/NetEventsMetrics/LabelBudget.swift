/// How many distinct values a label may take before the rest fold into one.
///
/// Per-connection labels explode a metric system's cardinality (every ephemeral port a series),
/// so the metrics are labelled only by process name (`comm`) and container, and even those are
/// bounded: the first ``commands`` process names and the first ``containers`` container ids get a
/// series of their own; traffic of any later one counts under the value ``overflowValue``
/// (`comm="other"`, `container="other"`). A value keeps its series for the life of the registry,
/// so every counter only grows, and the series' sum is always the whole. The slots go to the
/// first names seen, not the busiest: on a host with many short-lived process names, raise the
/// limit (`netevents_label_values_folded` says how many were folded).
public struct LabelLimits: Sendable, Hashable {
    /// Distinct `comm` values with a series of their own (default 100).
    public var commands: Int
    /// Distinct `container` values with a series of their own (default 100). Traffic of processes
    /// in no container has `container=""`, which always has its own series.
    public var containers: Int
    /// The value the rest fold into.
    public static let overflowValue = "other"
    /// The most either limit may be: beyond it, the label is not worth having.
    public static let maximum = 10_000

    /// Limits of `commands` process names and `containers` container ids.
    public init(commands: Int = 100, containers: Int = 100) {
        self.commands = commands
        self.containers = containers
    }
}

/// The values one label has given a series of its own, and the fold of the rest (not thread-safe:
/// ``NetworkMetrics`` holds it under its lock).
struct LabelBudget {
    private var admitted: Set<String> = []
    let limit: Int
    /// Values refused a series of their own (each counted once).
    private(set) var refused: Set<String> = []
    /// The most refused values remembered, so that the count of them stays bounded too.
    private static let refusedMemory = 10_000

    init(limit: Int) { self.limit = limit }

    /// `value` itself while the budget lasts (and forever after, once admitted); else `other`.
    mutating func label(_ value: String) -> String {
        if admitted.contains(value) { return value }
        // A process named `other` is counted under `other`, with no slot of its own and no fold.
        if value == LabelLimits.overflowValue { return value }
        if admitted.count < limit {
            admitted.insert(value)
            return value
        }
        if refused.count < Self.refusedMemory { refused.insert(value) }
        return LabelLimits.overflowValue
    }

    /// How many values have a series of their own.
    var admittedCount: Int { admitted.count }
}
