using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using ProxyHost;

namespace ModelRouting.Tests.EndToEnd.Support;

/// <summary>
/// The real gateway host (ProxyHost's <see cref="GatewayApp"/>) on Kestrel at a free loopback port, started as
/// a user starts it: the shipped appsettings.json as it is, and the test's deployment in a file given with
/// <c>--config</c>. Cleans up on dispose.
/// </summary>
public sealed class TestGateway : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient? _managementClient;

    private TestGateway(WebApplication app, string directory, string? managementUrl)
    {
        _app = app;
        Directory = directory;
        var management = managementUrl is null ? null : new Uri(managementUrl);
        Client = new HttpClient { BaseAddress = new Uri(app.Urls.First(u => new Uri(u).Port != management?.Port)), Timeout = TimeSpan.FromSeconds(30) };
        _managementClient = management is null ? null : new HttpClient { BaseAddress = management, Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Directory { get; }

    /// <summary>Gets the configuration file the gateway was started with; tests edit it to reload.</summary>
    public string ConfigFile => Path.Combine(Directory, "gateway.json");

    public Uri BaseAddress => Client.BaseAddress!;

    public HttpClient Client { get; }

    /// <summary>Gets a client of the management listener (ModelRouting:Admin:Urls, off unless the test sets it).</summary>
    public HttpClient ManagementClient => _managementClient
        ?? throw new InvalidOperationException("The management listener is off: set ModelRouting:Admin:Urls (AdminTestSupport.AdminSection does).");

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts the gateway with <paramref name="appsettings"/> as its <c>--config</c> file.</summary>
    public static async Task<TestGateway> StartAsync(JsonObject appsettings, params string[] args)
    {
        var directory = Path.Combine(Path.GetTempPath(), "gateway-test-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        appsettings["Logging"] ??= new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning" } };

        // Never the machine's defaults: the management listener off (a fixed port would collide between tests)
        // unless the test sets it, and runtime state in the test's own folder.
        var modelRouting = appsettings["ModelRouting"] as JsonObject ?? [];
        appsettings["ModelRouting"] = modelRouting;
        var admin = modelRouting["Admin"] as JsonObject ?? [];
        modelRouting["Admin"] = admin;
        admin["Urls"] ??= "";
        admin["StateFile"] ??= Path.Combine(directory, "state.json");
        var configFile = Path.Combine(directory, "gateway.json");
        await File.WriteAllTextAsync(configFile, appsettings.ToJsonString());
        var app = await GatewayApp.BuildAsync(["--urls", "http://127.0.0.1:0", "--config", configFile, .. args], AppContext.BaseDirectory);
        await app.StartAsync();
        var managementUrl = admin["Urls"]!.GetValue<string>().Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        return new TestGateway(app, directory, managementUrl);
    }

    /// <summary>
    /// Builds an appsettings object: one catch-all route on /v1 to the first cluster, the given clusters
    /// (id → destination urls) and ModelRouting endpoints.
    /// </summary>
    public static JsonObject Config(IReadOnlyDictionary<string, string[]> clusters, JsonArray endpoints, JsonObject? modelRouting = null, Action<JsonObject>? cluster = null)
    {
        var clusterNodes = new JsonObject();
        foreach (var (id, urls) in clusters)
        {
            var destinations = new JsonObject();
            for (var i = 0; i < urls.Length; i++)
            {
                destinations[$"d{i}"] = new JsonObject { ["Address"] = urls[i] };
            }

            var node = new JsonObject { ["Destinations"] = destinations };
            cluster?.Invoke(node);
            clusterNodes[id] = node;
        }

        modelRouting ??= [];
        modelRouting["Endpoints"] = endpoints;
        return new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["openai"] = new JsonObject
                    {
                        ["ClusterId"] = clusters.Keys.First(),
                        ["Match"] = new JsonObject { ["Path"] = "/v1/{**catch-all}" },
                    },
                },
                ["Clusters"] = clusterNodes,
            },
            ["ModelRouting"] = modelRouting,
        };
    }

    public static JsonObject Endpoint(string id, string cluster, int? maxContext = null, bool isDefault = false, string? status = null, string? upstream = null, string? adapter = null, params string[] aliases)
    {
        var node = new JsonObject { ["Id"] = id, ["Cluster"] = cluster, ["IsDefault"] = isDefault };
        if (maxContext is not null)
        {
            node["MaxContextLength"] = maxContext;
        }

        if (status is not null)
        {
            node["Status"] = status;
        }

        if (upstream is not null)
        {
            node["UpstreamModel"] = upstream;
        }

        if (adapter is not null)
        {
            node["Adapter"] = adapter;
        }

        if (aliases.Length > 0)
        {
            node["Aliases"] = new JsonArray([.. aliases.Select(a => (JsonNode)a)]);
        }

        return node;
    }

    /// <summary>POSTs a raw JSON body (sent byte for byte) to <paramref name="path"/>.</summary>
    public Task<HttpResponseMessage> PostRawAsync(string path, string body, CancellationToken cancellationToken = default) =>
        Client.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), cancellationToken);

    /// <summary>Reads an OpenAI error body: (code, type, message).</summary>
    public static async Task<(string? Code, string? Type, string? Message)> ReadErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = doc.RootElement.GetProperty("error");
        return (error.GetProperty("code").GetString(), error.GetProperty("type").GetString(), error.GetProperty("message").GetString());
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        _managementClient?.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
