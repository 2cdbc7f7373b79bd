using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using ModelRouting.Proxy;
using ModelRouting.Registry;
using ModelRouting.Routing;

namespace ModelRouting.Configuration;

/// <summary>
/// Holds the routing state the request path reads and rebuilds it when the <c>ModelRouting</c> options or
/// the YARP clusters change. An invalid change is logged and the last good state stays in force.
/// </summary>
/// <remarks>Thread-safe: readers take <see cref="Current"/> once per request; writers swap it atomically.</remarks>
public sealed partial class ModelRegistrySource : IDisposable
{
    private readonly IOptionsMonitor<ModelRoutingOptions> _options;
    private readonly ModelRoutingProxyConfigProvider _proxyConfig;
    private readonly TimeProvider _time;
    private readonly ILogger<ModelRegistrySource> _logger;
    private readonly IDisposable? _optionsSubscription;
    private readonly IDisposable _proxySubscription;
    private readonly Lock _writeLock = new();
    private RoutingState _current;

    internal ModelRegistrySource(
        IOptionsMonitor<ModelRoutingOptions> options,
        ModelRoutingProxyConfigProvider proxyConfig,
        TimeProvider time,
        ILogger<ModelRegistrySource> logger)
    {
        _options = options;
        _proxyConfig = proxyConfig;
        _time = time;
        _logger = logger;

        var (state, errors) = Build(options.CurrentValue, previous: null);
        _current = state ?? throw new ModelRoutingConfigurationException(errors);
        Log.Loaded(_logger, state.Router.Registry.Count);

        _optionsSubscription = options.OnChange(_ => Reload());
        _proxySubscription = ChangeToken.OnChange(() => _proxyConfig.GetConfig().ChangeToken, Reload);
    }

    /// <summary>Gets the routing state in force.</summary>
    public RoutingState Current => Volatile.Read(ref _current);

    /// <summary>Rebuilds the state from the current options and clusters; keeps the last good one on error.</summary>
    public void Reload()
    {
        lock (_writeLock)
        {
            var (state, errors) = Build(_options.CurrentValue, _current.Router.Registry);
            if (state is null)
            {
                Log.ReloadRejected(_logger, string.Join("; ", errors));
                return;
            }

            Volatile.Write(ref _current, state);
            Log.Reloaded(_logger, state.Router.Registry.Count);
        }
    }

    /// <summary>
    /// Applies a change to the registry atomically: <paramref name="change"/> gets the registry in force and
    /// returns the new one, or an error that leaves it in force.
    /// </summary>
    public RegistryResult Update(Func<ModelRegistry, RegistryResult> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_writeLock)
        {
            var current = _current;
            var result = change(current.Router.Registry);
            if (result.Succeeded)
            {
                Volatile.Write(ref _current, new RoutingState(new ModelRouter(result.Registry), _options.CurrentValue));
            }

            return result;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optionsSubscription?.Dispose();
        _proxySubscription.Dispose();
    }

    private (RoutingState? State, IReadOnlyList<string> Errors) Build(ModelRoutingOptions options, ModelRegistry? previous)
    {
        var (registry, errors) = ModelRegistryFactory.Build(options, _proxyConfig.Current.ClusterIds, previous, _time);
        return registry is null ? (null, errors) : (new RoutingState(new ModelRouter(registry), options), errors);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Model registry loaded with {Count} endpoints.", EventName = "RegistryLoaded")]
        public static partial void Loaded(ILogger logger, int count);

        [LoggerMessage(2, LogLevel.Information, "Model registry reloaded with {Count} endpoints.", EventName = "RegistryReloaded")]
        public static partial void Reloaded(ILogger logger, int count);

        [LoggerMessage(3, LogLevel.Error, "Invalid ModelRouting configuration; the last good registry stays in force: {Errors}", EventName = "ReloadRejected")]
        public static partial void ReloadRejected(ILogger logger, string errors);
    }
}
