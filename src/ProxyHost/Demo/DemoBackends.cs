namespace ProxyHost.Demo;

/// <summary>
/// Demo only: one embedded OpenAI-compatible backend per configured destination, each on a free loopback
/// port, with every destination's address pointed at its backend. Lets a newcomer run the gateway and its
/// example registry without a model server.
/// </summary>
public sealed class DemoBackends : IAsyncDisposable
{
    private readonly List<WebApplication> _apps;

    private DemoBackends(List<WebApplication> apps, IReadOnlyDictionary<string, string> addresses)
    {
        _apps = apps;
        Addresses = addresses;
    }

    /// <summary>Gets the backend address of each destination, keyed <c>cluster/destination</c>.</summary>
    public IReadOnlyDictionary<string, string> Addresses { get; }

    /// <summary>Starts a backend per destination and overrides the destinations' addresses in <paramref name="configuration"/>.</summary>
    public static async Task<DemoBackends> StartAsync(ConfigurationManager configuration)
    {
        var apps = new List<WebApplication>();
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var cluster in configuration.GetSection("ReverseProxy:Clusters").GetChildren())
        {
            foreach (var destination in cluster.GetSection("Destinations").GetChildren())
            {
                var name = $"{cluster.Key}/{destination.Key}";
                var app = DemoBackend.Create(name);
                await app.StartAsync();
                apps.Add(app);
                var url = app.Urls.First();
                addresses[name] = url;
                overrides[$"ReverseProxy:Clusters:{cluster.Key}:Destinations:{destination.Key}:Address"] = url + "/";
            }
        }

        configuration.AddInMemoryCollection(overrides);
        foreach (var (name, url) in addresses)
        {
            Console.WriteLine($"demo backend {name} listening on {url}");
        }

        return new DemoBackends(apps, addresses);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        _apps.Clear();
    }
}
