using System.Buffers;
using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Balancing;

/// <summary>
/// Scrapes the Prometheus <c>/metrics</c> page of every destination of every cluster that balances with
/// <c>ModelAware</c>, in the background, all destinations at once every <see cref="ModelAwareOptions.ScrapeInterval"/>.
/// A page that is missing, slow, larger than <see cref="ModelAwareOptions.MaxMetricsBytes"/>, malformed or not
/// vLLM's leaves the destination on the gateway's own signals (logged once, then not again until a scrape has succeeded).
/// Never on the request path. A round waits for its slowest scrape (at most <see cref="ModelAwareOptions.ScrapeTimeout"/>).
/// </summary>
internal sealed partial class MetricsScraper(ModelAwareState state, IProxyStateLookup proxy, ILogger<MetricsScraper> logger) : BackgroundService
{
    private static readonly TimeSpan s_minimumInterval = TimeSpan.FromMilliseconds(50);

    private readonly HttpClient _client = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        UseProxy = false,
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var tasks = new List<Task>();
        var live = new HashSet<DestinationState>(ReferenceEqualityComparer.Instance);
        while (!stoppingToken.IsCancellationRequested)
        {
            var options = state.Options;
            tasks.Clear();
            live.Clear();
            foreach (var cluster in proxy.GetClusters())
            {
                var modelAware = string.Equals(cluster.Model.Config.LoadBalancingPolicy, ModelAwarePolicy.PolicyName, StringComparison.OrdinalIgnoreCase);
                foreach (var destination in cluster.Destinations.Values)
                {
                    live.Add(destination);
                    if (modelAware)
                    {
                        tasks.Add(ScrapeAsync(cluster.ClusterId, destination, options, stoppingToken));
                    }
                }
            }

            state.Retain(live);
            await Task.WhenAll(tasks);
            var interval = options.ScrapeInterval < s_minimumInterval ? s_minimumInterval : options.ScrapeInterval;
            try
            {
                await Task.Delay(interval, state.Time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }

    /// <summary>The metrics address of a destination: its health address's or address's host with the metrics path.</summary>
    internal static Uri? MetricsAddress(DestinationState destination, ModelAwareOptions options)
    {
        var config = destination.Model?.Config;
        var address = string.IsNullOrEmpty(config?.Health) ? config?.Address : config.Health;
        if (address is null || !Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            return null;
        }

        return new UriBuilder(uri.Scheme, uri.Host, uri.Port, options.MetricsPath).Uri;
    }

    private async Task ScrapeAsync(string clusterId, DestinationState destination, ModelAwareOptions options, CancellationToken stoppingToken)
    {
        var signals = state.Get(destination);
        var address = MetricsAddress(destination, options);
        if (address is null)
        {
            return;
        }

        byte[]? buffer = null;
        string failure;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(options.ScrapeTimeout);
            using var response = await _client.GetAsync(address, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                failure = $"status {(int)response.StatusCode}";
            }
            else
            {
                await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
                buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
                var length = 0;
                var tooLarge = false;
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        if (buffer.Length >= options.MaxMetricsBytes)
                        {
                            tooLarge = true;
                            break;
                        }

                        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(options.MaxMetricsBytes, buffer.Length * 2));
                        buffer.AsSpan(0, length).CopyTo(larger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = larger;
                    }

                    var read = await stream.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, options.MaxMetricsBytes) - length), timeout.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    length += read;
                    if (length >= options.MaxMetricsBytes)
                    {
                        tooLarge = await stream.ReadAsync(new byte[1], timeout.Token) > 0;
                        break;
                    }
                }

                failure = tooLarge
                    ? $"larger than {options.MaxMetricsBytes} bytes"
                    : VllmMetricsParser.Parse(buffer.AsSpan(0, length), out var metrics, out var error) switch
                    {
                        MetricsParseStatus.Parsed => Succeeded(clusterId, destination, signals, metrics!),
                        MetricsParseStatus.NoVllmMetrics => "no vLLM metrics on the page",
                        _ => "malformed: " + error,
                    };
            }
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            failure = $"no answer within {options.ScrapeTimeout.TotalMilliseconds} ms";
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (HttpRequestException e)
        {
            failure = e.HttpRequestError.ToString();
        }
        catch (IOException e)
        {
            failure = e.Message;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        if (failure.Length == 0)
        {
            return;
        }

        // The last good snapshot stays and fades with its age (ModelAwareState.Freshness).
        if (signals.LoggedFailure is null)
        {
            signals.LoggedFailure = failure;
            Log.ScrapeFailed(logger, clusterId, destination.DestinationId, address.ToString(), failure);
        }
    }

    private string Succeeded(string clusterId, DestinationState destination, DestinationSignals signals, VllmMetrics metrics)
    {
        signals.SetMetrics(new MetricsSnapshot(metrics, state.Time.GetTimestamp()));
        if (signals.LoggedFailure is not null)
        {
            signals.LoggedFailure = null;
            Log.ScrapeRecovered(logger, clusterId, destination.DestinationId);
        }

        return "";
    }

    private static partial class Log
    {
        [LoggerMessage(120, LogLevel.Warning, "Metrics of destination '{Destination}' (cluster '{Cluster}') at {Address} are not usable ({Reason}); it is balanced on the gateway's own signals until they are.", EventName = "MetricsUnusable")]
        public static partial void ScrapeFailed(ILogger logger, string cluster, string destination, string address, string reason);

        [LoggerMessage(121, LogLevel.Information, "Metrics of destination '{Destination}' (cluster '{Cluster}') are usable again.", EventName = "MetricsRecovered")]
        public static partial void ScrapeRecovered(ILogger logger, string cluster, string destination);
    }
}
