using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §11 through the real host process, as the README's "Running it for real" has a user start it: the
/// shipped appsettings.json as it is (never replaced), and a configuration file of the user's own that shares
/// nothing with the example (another route name, another cluster, fewer endpoints).
/// </summary>
public sealed class DeploymentTests
{
    // The management listener is off in these runs: its default port would be shared by parallel tests.
    private static string[] HostArgs(TempDirectory dir, params string[] args) =>
        [.. args, "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + dir.File("state.json")];

    [Fact]
    public async Task RunningItForReal_WithYourOwnConfig_ServesYourDeploymentOnly()
    {
        AssertIsTheShippedExample(Path.Combine(AppContext.BaseDirectory, "appsettings.json"));
        await ServesYourDeploymentOnlyAsync(dll: null);
    }

    [Fact]
    public async Task RunningItForReal_PublishedHost_WithYourOwnConfig_ServesYourDeploymentOnly()
    {
        // The host as a user deploys it: `dotnet publish`, then run the output with a config of one's own. The build
        // this test run already made is published as it is (--no-build), and the published appsettings.json must be
        // the repository's, byte for byte.
        using var published = new TempDirectory();
        var root = RepositoryRoot();
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        var publish = new System.Diagnostics.ProcessStartInfo(HostProcess.DotnetPath())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "publish", Path.Combine(root, "src", "ProxyHost", "ProxyHost.csproj"), "-c", configuration, "--no-build", "-o", published.Path, "--nologo" })
        {
            publish.ArgumentList.Add(arg);
        }

        using (var process = System.Diagnostics.Process.Start(publish)!)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await process.WaitForExitAsync(timeout.Token);
            Assert.True(process.ExitCode == 0, "dotnet publish failed: " + await output + await errors);
        }

        var shipped = Path.Combine(published.Path, "appsettings.json");
        AssertIsTheShippedExample(shipped);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(root, "appsettings.json")), await File.ReadAllBytesAsync(shipped));
        await ServesYourDeploymentOnlyAsync(Path.Combine(published.Path, "ProxyHost.dll"));
    }

    private static async Task ServesYourDeploymentOnlyAsync(string? dll)
    {
        await using var backend = await TestBackend.StartAsync("mine");
        using var dir = new TempDirectory();
        var config = dir.Write("models.json", OwnConfig(backend.Url));
        using var host = HostProcess.Start(HostArgs(dir, "--config", config), dir.Path, dll: dll);
        var address = await host.WaitForListeningAsync(HostProcess.ExitBound);
        Assert.True(address is not null, "the host did not start: " + host.Output);
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };

        using (var models = await client.GetAsync("/v1/models"))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
            var ids = JsonNode.Parse(await models.Content.ReadAsStringAsync())!["data"]!.AsArray().Select(m => m!["id"]!.GetValue<string>());
            Assert.Equal(["llama3", "llama3:sql"], ids);
        }

        using (var chat = await client.PostAsync("/v1/chat/completions", Json(E2EHelpers.Chat("gpt-4o"))))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
            Assert.Equal("llama3", chat.Headers.GetValues("x-gateway-endpoint").Single());
        }

        using (var adapter = await client.PostAsync("/v1/chat/completions", Json(E2EHelpers.Chat("llama3:sql"))))
        {
            Assert.Equal(HttpStatusCode.OK, adapter.StatusCode);
        }

        using (var noModel = await client.PostAsync("/v1/chat/completions", Json("""{"messages":[{"role":"user","content":"hi"}]}""")))
        {
            Assert.Equal("llama3", noModel.Headers.GetValues("x-gateway-endpoint").Single());
        }

        // Nothing of the example deployment: its endpoints and aliases are unknown here.
        foreach (var example in new[] { "qwen3-8b", "qwen3-8b:sql", "gpt-4o-mini", "long" })
        {
            using var refused = await client.PostAsync("/v1/chat/completions", Json(E2EHelpers.Chat(example)));
            await E2EHelpers.AssertErrorAsync(refused, HttpStatusCode.NotFound, "invalid_request_error", "model_not_found");
        }

        Assert.Equal(["llama3-8b-instruct", "sql", "llama3-8b-instruct"], backend.Requests.Select(r => r.Model));
        Assert.DoesNotContain("AmbiguousMatch", host.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", host.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_GoodConfig_ExitsZero_WithASummary_WithoutListening()
    {
        using var dir = new TempDirectory();
        var config = dir.Write("models.json", OwnConfig("http://127.0.0.1:9/"));

        var result = await HostProcess.RunToExitAsync(HostArgs(dir, "--check", "--config", config), dir.Path);

        Assert.True(result.Exited, "--check did not exit: " + result.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("Configuration OK", result.Output, StringComparison.Ordinal);
        Assert.Contains("llama3:sql", result.Output, StringComparison.Ordinal);
        Assert.Contains("gpt-4o → llama3", result.Output, StringComparison.Ordinal);
        Assert.Contains("mine /v1/{**rest} → llama", result.Output, StringComparison.Ordinal);
        Assert.Contains("default:      llama3", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("qwen", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_ExampleDeployment_ExitsZero()
    {
        using var dir = new TempDirectory();

        var result = await HostProcess.RunToExitAsync(HostArgs(dir, "--check"), dir.Path);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("qwen3-8b-128k", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_BrokenConfig_ExitsOne_NamingEveryEntryAndField()
    {
        using var dir = new TempDirectory();
        var config = dir.Write("models.json", """
            {
              "ReverseProxy": {
                "Routes": {
                  "mine": { "ClusterId": "llama", "Match": { "Path": "/v1/{**rest}" } },
                  "theirs": { "ClusterId": "llama", "Match": { "Path": "/V1/{**catch-all}" } }
                },
                "Clusters": { "llama": { "Destinations": { "d1": { "Address": "http://127.0.0.1:9/" } } } }
              },
              "ModelRouting": {
                "Endpoints": [
                  { "Id": "a", "Cluster": "nope" },
                  { "Id": "b", "Cluster": "llama", "MaxContextLength": 0 }
                ],
                "PassThroughPaths": [ "/v1/load_lora_adapter" ]
              }
            }
            """);

        var result = await HostProcess.RunToExitAsync(HostArgs(dir, "--check", "--config", config), dir.Path);

        Assert.True(result.Exited, "--check did not exit: " + result.Output);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("'mine' and 'theirs'", result.Output, StringComparison.Ordinal);
        Assert.Contains("Endpoints[0] ('a'): Cluster 'nope'", result.Output, StringComparison.Ordinal);
        Assert.Contains("Endpoints[1] ('b'): MaxContextLength", result.Output, StringComparison.Ordinal);
        Assert.Contains("PassThroughPaths[0]", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_FileThatIsNotJson_ExitsOne_NamingTheFile()
    {
        using var dir = new TempDirectory();
        var config = dir.Write("models.json", "{ \"ModelRouting\": { \"Endpoints\": [ ");

        var result = await HostProcess.RunToExitAsync(HostArgs(dir, "--check", "--config", config), dir.Path);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("models.json", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OverlappingRoutes_AtStartUp_ExitNonZero_NamingBoth()
    {
        using var dir = new TempDirectory();
        var config = dir.Write("models.json", """
            {
              "ReverseProxy": {
                "Routes": {
                  "first": { "ClusterId": "llama", "Match": { "Path": "/v1/{**rest}" } },
                  "second": { "ClusterId": "llama", "Match": { "Path": "/v1/{**catch-all}", "Methods": [ "POST" ] } }
                },
                "Clusters": { "llama": { "Destinations": { "d1": { "Address": "http://127.0.0.1:9/" } } } }
              },
              "ModelRouting": { "Endpoints": [ { "Id": "a", "Cluster": "llama", "IsDefault": true } ] }
            }
            """);

        var result = await HostProcess.RunToExitAsync(HostArgs(dir, "--config", config), dir.Path);

        Assert.True(result.Exited, "the host did not exit: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("'first' and 'second'", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OverlappingRouteAddedOnReload_IsRefused_NamingBoth_AndRequestsKeepFlowing()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var config = TestGateway.Config(new Dictionary<string, string[]> { ["c"] = [backend.Url] }, [TestGateway.Endpoint("m", "c", isDefault: true)]);
        await using var gateway = await TestGateway.StartAsync(config);
        var logs = gateway.CaptureLogs();

        config["ReverseProxy"]!["Routes"]!["copy"] = new JsonObject { ["ClusterId"] = "c", ["Match"] = new JsonObject { ["Path"] = "/v1/{**other}" } };
        await File.WriteAllTextAsync(gateway.ConfigFile + ".tmp", config.ToJsonString());
        File.Move(gateway.ConfigFile + ".tmp", gateway.ConfigFile, overwrite: true);

        var error = await E2EHelpers.PollAsync(
            () => Task.FromResult(logs.Entries.FirstOrDefault(e => e.Level >= LogLevel.Error).Message),
            m => m is not null,
            "the overlapping route to be refused");
        Assert.Contains("'copy' and 'openai'", error, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m"));
    }

    [Fact]
    public async Task OneEdit_AddingAClusterAndItsEndpoints_IsAppliedWhole_WithoutErrors()
    {
        await using var first = await TestBackend.StartAsync("first");
        await using var second = await TestBackend.StartAsync("second");
        var config = TestGateway.Config(new Dictionary<string, string[]> { ["c1"] = [first.Url] }, [TestGateway.Endpoint("m1", "c1", isDefault: true)]);
        await using var gateway = await TestGateway.StartAsync(config);
        var logs = gateway.CaptureLogs();

        var edited = TestGateway.Config(
            new Dictionary<string, string[]> { ["c1"] = [first.Url], ["c2"] = [second.Url] },
            [TestGateway.Endpoint("m1", "c1", isDefault: true), TestGateway.Endpoint("m2", "c2")]);
        edited["ModelRouting"]!["Admin"] = config["ModelRouting"]!["Admin"]!.DeepClone();
        await File.WriteAllTextAsync(gateway.ConfigFile + ".tmp", edited.ToJsonString());
        File.Move(gateway.ConfigFile + ".tmp", gateway.ConfigFile, overwrite: true);

        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("m2"), s => s == HttpStatusCode.OK, "m2 on the new cluster");
        Assert.NotEmpty(second.Requests);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    private static void AssertIsTheShippedExample(string appsettings)
    {
        var shipped = File.ReadAllText(appsettings);
        Assert.Contains("\"qwen3-8b\"", shipped, StringComparison.Ordinal);
        Assert.Contains("\"openai\"", shipped, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Proxy.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Proxy.sln was not found above " + AppContext.BaseDirectory);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string OwnConfig(string backendUrl) => $$"""
        {
          "ReverseProxy": {
            "Routes": { "mine": { "ClusterId": "llama", "Match": { "Path": "/v1/{**rest}" } } },
            "Clusters": { "llama": { "Destinations": { "d1": { "Address": "{{backendUrl}}" } } } }
          },
          "ModelRouting": {
            "Endpoints": [
              { "Id": "llama3", "BaseModel": "llama3-8b-instruct", "Cluster": "llama", "MaxContextLength": 8192, "IsDefault": true, "Aliases": [ "gpt-4o" ] },
              { "Id": "llama3:sql", "BaseModel": "llama3-8b-instruct", "Adapter": "sql", "Cluster": "llama", "MaxContextLength": 8192 }
            ]
          }
        }
        """;
}
