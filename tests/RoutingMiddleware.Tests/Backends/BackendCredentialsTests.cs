using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ModelRouting.Backends;
using ModelRouting.Configuration;
using ModelRouting.Proxy;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Tests.Backends;

/// <summary>ModelRouting:Backends binds from configuration; lookups ignore case as configuration keys do.</summary>
public sealed class BackendCredentialsTests
{
    private static BackendCredentials Credentials(IConfiguration configuration)
    {
        var options = new ModelRoutingOptions();
        configuration.GetSection("ModelRouting").Bind(options);
        var proxy = new ModelRoutingProxyConfigProvider([new InMemoryConfigProvider(
            [],
            [new ClusterConfig { ClusterId = "qwen-pool" }, new ClusterConfig { ClusterId = "plain" }])]);
        return new BackendCredentials(new FixedOptionsMonitor(options), proxy, NullLogger<BackendCredentials>.Instance);
    }

    [Fact]
    public void Bind_JsonAndEnvironmentStyleOverride_LaterSourceWinsIgnoringCase()
    {
        var json = """{ "ModelRouting": { "Backends": { "qwen-pool": { "ApiKey": "from-json", "AdapterReconcileInterval": "00:00:02" }, "plain": { "ApiKey": "  " } } } }""";
        var configuration = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)))
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ModelRouting:Backends:QWEN-POOL:ApiKey"] = "from-env" })
            .Build();

        using var credentials = Credentials(configuration);

        Assert.True(credentials.TryGetAuthorization("qwen-pool", out var value));
        Assert.Equal("Bearer from-env", value);
        Assert.True(credentials.TryGetAuthorization("Qwen-Pool", out _));
        Assert.False(credentials.TryGetAuthorization("plain", out _));
        Assert.False(credentials.TryGetAuthorization("other", out _));
        Assert.Equal(TimeSpan.FromSeconds(2), credentials.AdapterReconcileInterval("qwen-pool"));
        Assert.Equal(TimeSpan.FromSeconds(10), credentials.AdapterReconcileInterval("plain"));
        Assert.Equal(TimeSpan.FromSeconds(10), credentials.AdapterReconcileInterval("other"));
    }

    [Fact]
    public void NoBackendsSection_NoKeys()
    {
        using var credentials = Credentials(new ConfigurationBuilder().Build());

        Assert.False(credentials.TryGetAuthorization("qwen-pool", out _));
    }

    private sealed class FixedOptionsMonitor(ModelRoutingOptions value) : IOptionsMonitor<ModelRoutingOptions>
    {
        public ModelRoutingOptions CurrentValue => value;

        public ModelRoutingOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ModelRoutingOptions, string?> listener) => null;
    }
}
