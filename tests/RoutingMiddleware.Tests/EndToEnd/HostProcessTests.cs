using System.Net;
using System.Text;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §3: the real host, run as a process. Invalid configuration is refused at start-up: the host exits
/// non-zero with a message that names the entry and the field. The appsettings.json beside ProxyHost.dll is
/// the repository's (endpoints 0..2: qwen3-8b, qwen3-8b:sql, qwen3-8b-128k); --config layers over it by index.
/// </summary>
public sealed partial class HostProcessTests
{
    private static readonly TimeSpan ExitBound = HostProcess.ExitBound;

    [Fact]
    public async Task InvalidConfigFile_ExitsNonZero_NamingEntriesAndFields()
    {
        using var dir = new TempDirectory();
        var bad = dir.Write("bad.json", """
            {
              "ModelRouting": {
                "Endpoints": [
                  { "Cluster": "no-such-cluster" },
                  { "MaxContextLength": 0 }
                ]
              }
            }
            """);

        var result = await HostProcess.RunToExitAsync(["--config", bad, "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path);

        Assert.True(result.Exited, "the host did not exit within 30 s: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Endpoints[0]", result.Output);
        Assert.Contains("Cluster", result.Output);
        Assert.Contains("no-such-cluster", result.Output);
        Assert.Contains("Endpoints[1]", result.Output);
        Assert.Contains("MaxContextLength", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Output);
    }

    [Fact]
    public async Task InvalidEnvironmentOverride_ExitsNonZero_NamingEntryAndField()
    {
        using var dir = new TempDirectory();

        var result = await HostProcess.RunToExitAsync(
            ["--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path, new Dictionary<string, string> { ["ModelRouting__Endpoints__2__Status"] = "Sleeping" });

        Assert.True(result.Exited, "the host did not exit within 30 s: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Endpoints[2]", result.Output);
        Assert.Contains("Status", result.Output);
        Assert.Contains("Sleeping", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Output);
    }

    [Fact]
    public async Task ValidConfigWithDemo_StartsAndServes()
    {
        using var dir = new TempDirectory();
        using var host = HostProcess.Start(["--demo", "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path);

        var address = await host.WaitForListeningAsync(ExitBound);
        Assert.True(address is not null, "the host did not report a listening address within 30 s: " + host.Output);

        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        using var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var chat = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"qwen3-8b:sql","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        Assert.Equal("qwen3-8b:sql", chat.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Contains("You asked model 'sql-lora'", await chat.Content.ReadAsStringAsync());
    }
}
