using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using ModelRouting.Observability;
using ModelRouting.Registry;
using ModelRouting.Usage;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// The hot-path rule: recording a request (every instrument, aggregated by the OpenTelemetry SDK, and the status
/// window) allocates nothing once its series exist. BenchmarkDotNet measures the same (ObservabilityBenchmarks);
/// this keeps it from regressing unnoticed.
/// </summary>
public sealed class ObservabilityAllocationTests
{
    [Fact]
    public void OnRequestCompleted_SteadyState_AllocatesNothing()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(GatewayMetrics.MeterName)
            .AddReader(new PeriodicExportingMetricReader(new DroppingExporter(), 60_000))
            .Build();
        var endpoint = new ModelEndpoint(new ModelId("m"), "m", "pool") { UpstreamModel = "org/m", Aliases = ["gpt-x"] };
        var registry = new ModelRegistry(TimeProvider.System).Register(endpoint).Registry!;
        var metrics = new GatewayMetrics(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), () => registry);
        var listener = new ObservabilityListener(metrics, new StatusWindow(TimeProvider.System), NullLoggerFactory.Instance, new ObservabilityOptions());
        var context = new DefaultHttpContext();

        var plain = new GatewayRequest { Operation = GenAIOperation.Chat, RequestedModel = "gpt-x", Endpoint = registry.Resolve("m"), Attempts = 2, Fallback = "failover", EstimatedPromptTokens = 12 };
        plain.SetUsage(10, 5);
        var stream = new GatewayRequest { Operation = GenAIOperation.Chat, RequestedModel = "m", Endpoint = registry.Resolve("m"), Attempts = 1, Streaming = true, EstimatedPromptTokens = 12 };
        stream.FirstByte = stream.FirstToken = stream.Started + 100;
        stream.SetUsage(10, 5);
        var refused = new GatewayRequest { Operation = GenAIOperation.Embeddings, RequestedModel = ModelLabels.Unknown, ErrorCode = "rate_limit_exceeded", ErrorType = "tokens" };

        void RecordAll()
        {
            context.Response.StatusCode = 200;
            listener.OnRequestCompleted(context, plain);
            listener.OnRequestCompleted(context, stream);
            context.Response.StatusCode = 429;
            listener.OnRequestCompleted(context, refused);
        }

        for (var i = 0; i < 100; i++)
        {
            RecordAll(); // the series and the window's endpoint exist from here on
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            RecordAll();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private sealed class DroppingExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }
}
