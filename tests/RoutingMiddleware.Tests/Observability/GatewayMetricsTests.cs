using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Errors;
using ModelRouting.Observability;
using ModelRouting.Registry;
using ModelRouting.Usage;

namespace ModelRouting.Tests.Observability;

/// <summary>What each instrument records for one request (the series the end-to-end scrape cannot easily provoke).</summary>
public sealed class GatewayMetricsTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measurements = [];
    private readonly GatewayMetrics _metrics;
    private ModelRegistry _registry;

    public GatewayMetricsTests()
    {
        var endpoint = new ModelEndpoint(new ModelId("m"), "m", "pool") { UpstreamModel = "org/m" };
        _registry = new ModelRegistry(TimeProvider.System).Register(endpoint).Registry!;
        var factory = _services.GetRequiredService<IMeterFactory>();
        _metrics = new GatewayMetrics(factory, () => _registry);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == GatewayMetrics.MeterName && instrument.Meter.Scope == factory)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Add(i, v, tags));
        _listener.Start();
    }

    [Fact]
    public void Record_AFailoverWithUsage_CountsAttemptsFallbackTokensAndRatio()
    {
        var request = new GatewayRequest
        {
            Operation = GenAIOperation.Chat,
            RequestedModel = "alias-of-m",
            Endpoint = _registry.Resolve("m"),
            Attempts = 3,
            Fallback = "failover",
            EstimatedPromptTokens = 110,
        };
        request.SetUsage(100, 7);

        _metrics.Record(request, 200, 0.25);

        Assert.Equal(3, Single("gateway.attempts").Value);
        var fallback = Single("gateway.fallbacks");
        Assert.Equal("failover", fallback.Tags[GatewayMetrics.FallbackReason]);
        Assert.Equal("m", fallback.Tags[GatewayMetrics.EndpointTag]);
        var tokens = _measurements.Where(m => m.Instrument == "gen_ai.client.token.usage").ToList();
        Assert.Equal(100, tokens.Single(t => (string)t.Tags[GatewayMetrics.TokenType]! == "input").Value);
        Assert.Equal(7, tokens.Single(t => (string)t.Tags[GatewayMetrics.TokenType]! == "output").Value);
        Assert.All(tokens, t => Assert.Equal("org/m", t.Tags[GatewayMetrics.ResponseModel]));
        Assert.All(tokens, t => Assert.Equal("alias-of-m", t.Tags[GatewayMetrics.RequestModel]));
        Assert.Equal(1.1, Single("gateway.token_estimate.ratio").Value, 6);
        var duration = Single("gen_ai.server.request.duration");
        Assert.Equal(0.25, duration.Value);
        Assert.Equal("chat", duration.Tags[GatewayMetrics.OperationName]);
        Assert.False(duration.Tags.ContainsKey(GatewayMetrics.ErrorType));
        Assert.DoesNotContain(_measurements, m => m.Instrument == "gen_ai.server.time_to_first_token"); // not a stream
    }

    [Fact]
    public async Task Record_ARateLimitRefusalWrittenByTheGateway_IsCountedByType()
    {
        // The error's code reaches the request's feature when the gateway writes it (any refusal, any writer).
        var context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();
        var request = new GatewayRequest { Operation = GenAIOperation.Chat, RequestedModel = "m" };
        context.Features.Set(request);
        await new OpenAIError(StatusCodes.Status429TooManyRequests, "tokens", "rate_limit_exceeded", "Too many tokens.").WriteAsync(context);
        Assert.Equal("rate_limit_exceeded", request.ErrorCode);

        _metrics.Record(request, context.Response.StatusCode, 0.001);

        var refusal = Single("gateway.rate_limit.refusals");
        Assert.Equal("tokens", refusal.Tags[GatewayMetrics.RateLimitType]);
        Assert.Equal("m", refusal.Tags[GatewayMetrics.RequestModel]);
        var counted = Single("gateway.requests");
        Assert.Equal(429, counted.Tags[GatewayMetrics.StatusCode]);
        Assert.Equal("rate_limit_exceeded", counted.Tags[GatewayMetrics.ErrorType]);
        Assert.Equal(GatewayMetrics.NoEndpoint, counted.Tags[GatewayMetrics.EndpointTag]);
        Assert.DoesNotContain(_measurements, m => m.Instrument == "gen_ai.client.token.usage");
    }

    [Fact]
    public void EndpointStatus_ReportsTheRegistryInForce()
    {
        _registry = _registry.SetStatus("m", EndpointStatus.Loading).Registry;
        _listener.RecordObservableInstruments();

        var statuses = _measurements.Where(m => m.Instrument == "gateway.endpoint.status").ToList();
        Assert.Equal(4, statuses.Count);
        Assert.Equal(1, statuses.Single(s => (string)s.Tags[GatewayMetrics.EndpointStatusTag]! == "loading").Value);
        Assert.Equal(0, statuses.Where(s => (string)s.Tags[GatewayMetrics.EndpointStatusTag]! != "loading").Sum(s => s.Value));
    }

    public void Dispose()
    {
        _listener.Dispose();
        _services.Dispose();
    }

    private (string Instrument, double Value, Dictionary<string, object?> Tags) Single(string instrument) =>
        Assert.Single(_measurements, m => m.Instrument == instrument);

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>();
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        lock (_measurements)
        {
            _measurements.Add((instrument.Name, value, copy));
        }
    }
}
