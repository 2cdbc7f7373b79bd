using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using ModelRouting.Configuration;
using ModelRouting.Observability;
using ModelRouting.Usage;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ModelRouting.Benchmarks;

/// <summary>
/// The gateway's observability as the host wires it, for benchmarks: the metrics listener and the status window,
/// with the OpenTelemetry SDK aggregating every instrument (a periodic reader whose exporter drops the batches, so
/// recording follows the same path as under the Prometheus exporter). The access log is off (a null logger): it
/// is a log line, measured by the logging provider, not by instrumentation.
/// </summary>
internal sealed class ObservedPipeline : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly MeterProvider _meterProvider;

    public ObservedPipeline(ModelRegistrySource source)
    {
        _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        _meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(GatewayMetrics.MeterName)
            .AddReader(new PeriodicExportingMetricReader(new DroppingExporter(), exportIntervalMilliseconds: 60_000))
            .Build();
        var metrics = new GatewayMetrics(_services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), source);
        Listener = new ObservabilityListener(metrics, new StatusWindow(TimeProvider.System), NullLoggerFactory.Instance, new ObservabilityOptions());
    }

    public IGatewayRequestListener Listener { get; }

    public void Dispose()
    {
        _meterProvider.Dispose();
        _services.Dispose();
    }

    private sealed class DroppingExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }
}
