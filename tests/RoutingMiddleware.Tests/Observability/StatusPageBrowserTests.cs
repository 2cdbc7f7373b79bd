using System.Net;
using Microsoft.Playwright;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// SPEC §15's live status page in a real headless browser (Chromium driven by Playwright): it loads without console
/// errors, shows every endpoint with its status, and its numbers move when traffic flows, without a reload.
/// </summary>
public sealed class StatusPageBrowserTests
{
    [BrowserFact]
    public async Task StatusPage_InHeadlessChromium_ShowsEveryEndpointAndMovesWithTraffic()
    {
        Assert.True(Browser.ExecutablePath is not null, "No Chromium found, and the test is required here (CI or GATEWAY_REQUIRE_BROWSER=1).");
        await using var fast = await TestBackend.StartAsync("fast", OpenAIChatResponder("hi"));
        await using var slow = await TestBackend.StartAsync("slow", async (context, recorded) =>
        {
            await Task.Delay(30);
            await OpenAIChatResponder("slowly")(context, recorded);
        });
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["fast-pool"] = [fast.Url], ["slow-pool"] = [slow.Url] },
            [
                TestGateway.Endpoint("fast-model", "fast-pool", isDefault: true),
                TestGateway.Endpoint("slow-model", "slow-pool"),
                TestGateway.Endpoint("loading-model", "slow-pool", status: "Loading"),
            ],
            AdminTestSupport.AdminSection()));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Browser.ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox"], // CI runs as root, where Chromium's sandbox cannot start
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning")
            {
                problems.Add($"console {message.Type}: {message.Text}");
            }
        };
        page.PageError += (_, error) => problems.Add("page error: " + error);
        var dataPolls = 0;
        page.Response += (_, response) =>
        {
            if (response.Url.EndsWith("/status/data", StringComparison.Ordinal) && response.Status == 200)
            {
                Interlocked.Increment(ref dataPolls);
            }
        };

        var response = await page.GotoAsync(new Uri(gateway.ManagementClient.BaseAddress!, "/status?interval=300").ToString());
        Assert.Equal((int)HttpStatusCode.OK, response!.Status);

        // Every endpoint, with its status.
        foreach (var (id, status) in new[] { ("fast-model", "ready"), ("slow-model", "ready"), ("loading-model", "loading") })
        {
            var row = page.Locator($"tr[data-endpoint=\"{id}\"]");
            await Assertions.Expect(row).ToBeVisibleAsync();
            await Assertions.Expect(row.Locator("[data-field=status]")).ToHaveTextAsync(status);
            await Assertions.Expect(row.Locator("[data-field=requests15m]")).ToHaveTextAsync("0");
        }

        var fastRow = page.Locator("tr[data-endpoint=\"fast-model\"]");
        var slowRow = page.Locator("tr[data-endpoint=\"slow-model\"]");
        Assert.Equal("–", await fastRow.Locator("[data-field=p50Ms]").TextContentAsync());
        var pollsBefore = Volatile.Read(ref dataPolls);

        // Traffic: 6 plain and 2 streaming requests to one, 3 to the other.
        for (var i = 0; i < 6; i++)
        {
            using var ok = await gateway.PostRawAsync("/v1/chat/completions", MetricsEndToEndTests.Chat("fast-model", stream: false));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        for (var i = 0; i < 2; i++)
        {
            using var request = StreamingPost("/v1/chat/completions", MetricsEndToEndTests.Chat("fast-model", stream: true));
            using var streamed = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Prompt);
            await streamed.Content.ReadAsStringAsync();
        }

        for (var i = 0; i < 3; i++)
        {
            using var ok = await gateway.PostRawAsync("/v1/chat/completions", MetricsEndToEndTests.Chat("slow-model", stream: false));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // The page picks it up by polling, without a reload.
        var expect = new LocatorAssertionsToHaveTextOptions { Timeout = 10_000 };
        await Assertions.Expect(fastRow.Locator("[data-field=requests15m]")).ToHaveTextAsync("8", expect);
        await Assertions.Expect(slowRow.Locator("[data-field=requests15m]")).ToHaveTextAsync("3", expect);
        Assert.True(Volatile.Read(ref dataPolls) > pollsBefore);
        Assert.NotEqual("0.00", await fastRow.Locator("[data-field=requestsPerSecond]").TextContentAsync());
        Assert.NotEqual("0.0", await fastRow.Locator("[data-field=tokensPerSecond]").TextContentAsync());
        Assert.NotEqual("–", await fastRow.Locator("[data-field=p50Ms]").TextContentAsync());
        Assert.NotEqual("–", await fastRow.Locator("[data-field=ttftP50Ms]").TextContentAsync());
        Assert.Equal("–", await slowRow.Locator("[data-field=ttftP50Ms]").TextContentAsync()); // no stream went there
        Assert.Equal("0", await fastRow.Locator("[data-field=errors]").TextContentAsync());
        Assert.Equal("0", await page.Locator("tr[data-endpoint=\"loading-model\"] [data-field=requests15m]").TextContentAsync());

        // The slow backend's latency shows: its p50 is at least its 30 ms delay.
        var slowP50 = await slowRow.Locator("[data-field=p50Ms]").TextContentAsync();
        Assert.True(Milliseconds(slowP50!) >= 30, "slow-model p50 " + slowP50);

        // The charts were drawn: the requests chart has non-background pixels at its right end.
        var drawn = await page.EvaluateAsync<bool>("""
            () => {
              const canvas = document.getElementById('chart-requests');
              const ctx = canvas.getContext('2d');
              const data = ctx.getImageData(canvas.width - 40, 0, 32, canvas.height).data;
              for (let i = 0; i < data.length; i += 4) { if (data[i + 2] > 200 && data[i] < 120) { return true; } }
              return false;
            }
            """);
        Assert.True(drawn, "the requests chart shows no line for the traffic");

        if (Environment.GetEnvironmentVariable("GATEWAY_STATUS_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    private static double Milliseconds(string text) =>
        text.EndsWith(" ms", StringComparison.Ordinal) ? double.Parse(text[..^3], System.Globalization.CultureInfo.InvariantCulture)
        : text.EndsWith(" s", StringComparison.Ordinal) ? 1000 * double.Parse(text[..^2], System.Globalization.CultureInfo.InvariantCulture)
        : throw new FormatException(text);
}
