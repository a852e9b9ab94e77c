import CoreMetrics

/// Records the jobs pipeline's metrics (``MetricCatalog``) through swift-metrics; the backend —
/// EMF on AWS and under `martlet local`, Prometheus text on the worker's `/metrics` — is chosen by
/// the process that bootstraps it.
public struct JobMetrics: Sendable {
    let factory: any MetricsFactory

    /// Records into `factory` (by default the process's bootstrapped backend; none records nothing).
    public init(factory: any MetricsFactory = MetricsSystem.factory) { self.factory = factory }

    /// Adds `amount` to a count metric.
    public func count(_ metric: MetricCatalog.Metric, model: String? = nil, by amount: Int64 = 1) {
        Counter(label: metric.name, dimensions: dimensions(metric, model), factory: factory).increment(by: amount)
    }

    /// Records a time in milliseconds.
    public func time(_ metric: MetricCatalog.Metric, model: String? = nil, milliseconds: Int64) {
        Timer(label: metric.name, dimensions: dimensions(metric, model), factory: factory).recordNanoseconds(max(0, milliseconds) * 1_000_000)
    }

    private func dimensions(_ metric: MetricCatalog.Metric, _ model: String?) -> [(String, String)] {
        metric.dimensions.contains("Model") ? [("Model", model ?? "unknown")] : []
    }
}
