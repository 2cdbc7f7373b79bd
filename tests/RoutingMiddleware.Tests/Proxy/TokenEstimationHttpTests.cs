using System.Globalization;
using Microsoft.ML.Tokenizers;
using ModelRouting.Configuration;

namespace ModelRouting.Tests.Proxy;

/// <summary>The estimate through HTTP: every prompt shape shows in x-gateway-estimated-tokens, and decisions at the limit are exact.</summary>
public sealed class TokenEstimationHttpTests
{
    private static readonly Tokenizer s_o200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
    private const int Media = 765;

    private static int Count(string text) => s_o200k.CountTokens(text);

    private static Task<ModelRoutingTestHost> StartAsync(string mode, int maxContext = 1_000_000, double margin = 0.25) =>
        ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.TokenEstimation.Mode = mode;
                o.TokenEstimation.ExactCountMargin = margin;
                o.Endpoints.Add(new ModelEndpointOptions { Id = "m", Cluster = "c1", IsDefault = true, MaxContextLength = maxContext });
            },
            "c1");

    private static long Estimated(ModelRoutingTestHost.Echo echo) =>
        long.Parse(echo.Header("x-gateway-estimated-tokens")!, CultureInfo.InvariantCulture);

    public static TheoryData<string, string, long> Shapes() => new()
    {
        { "chat string", """{"model":"m","messages":[{"role":"user","content":"The quick brown fox jumps over the lazy dog."}]}""",
            Count("user") + Count("The quick brown fox jumps over the lazy dog.") + 3 + 3 },
        { "chat escapes", """{"model":"m","messages":[{"role":"user","content":"caf\u00e9\nna\u00efve \ud83d\ude00"}]}""",
            Count("user") + Count("café\nnaïve 😀") + 3 + 3 },
        { "chat parts + image", """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}]}]}""",
            Count("user") + Count("What is in this image?") + Media + 3 + 3 },
        { "chat name", """{"model":"m","messages":[{"role":"user","name":"alice","content":"hi"}]}""",
            Count("user") + Count("alice") + Count("hi") + 1 + 3 + 3 },
        { "completions string", """{"model":"m","prompt":"Once upon a time"}""", Count("Once upon a time") },
        { "completions strings", """{"model":"m","prompt":["Once upon a time","in a land far away"]}""", Count("Once upon a time") + Count("in a land far away") },
        { "completions token ids", """{"model":"m","prompt":[1212, 318, 257, 1332]}""", 4 },
        { "completions token arrays", """{"model":"m","prompt":[[1212, 318],[257, 1332, 13]]}""", 5 },
        { "embeddings", """{"model":"m","input":["first document","second one"]}""", Count("first document") + Count("second one") },
        { "responses", """{"model":"m","instructions":"Answer in French.","input":"Where is the station?"}""", Count("Answer in French.") + Count("Where is the station?") },
        { "responses items", """{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"Describe it"},{"type":"input_image","image_url":"https://example.com/a.png"}]}]}""",
            Count("user") + Count("Describe it") + Media + 3 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task Tiktoken_EveryShape_HeaderShowsExactCount(string shape, string body, long expected)
    {
        await using var host = await StartAsync("Tiktoken");

        var echo = await host.PostAsync("/v1/chat/completions", body);

        Assert.True(echo.Status == 200, shape);
        Assert.Equal(expected, Estimated(echo));
    }

    [Fact]
    public async Task Tools_AreCounted()
    {
        await using var host = await StartAsync("Tiktoken");
        const string messages = "\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris?\"}]";
        const string tools = """
            "tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string","description":"The city"}},"required":["city"]}}}]
            """;

        var without = Estimated(await host.PostAsync("/v1/chat/completions", $$"""{"model":"m",{{messages}}}"""));
        var with = Estimated(await host.PostAsync("/v1/chat/completions", $$"""{"model":"m",{{messages}},{{tools}}}"""));

        Assert.InRange(with - without, Count("get_weather") + Count("Get the current weather for a city"), 80);
    }

    [Theory]
    [InlineData("Tiktoken")]
    [InlineData("Heuristic")]
    public async Task AtTheLimit_OneUnderPasses_OneOverIsRefused(string mode)
    {
        const string content = "Routing decisions at the limit are made on exact counts, never on a guess.";
        var prompt = Count("user") + Count(content) + 3 + 3;
        const int limit = 200;
        static string Body(long maxTokens) => $$"""{"model":"m","max_tokens":{{maxTokens}},"messages":[{"role":"user","content":"{{content}}"}]}""";
        await using var host = await StartAsync(mode, maxContext: limit);

        var under = await host.PostAsync("/v1/chat/completions", Body(limit - prompt - 1));
        var exact = await host.PostAsync("/v1/chat/completions", Body(limit - prompt));
        var over = await host.PostAsync("/v1/chat/completions", Body(limit - prompt + 1));

        Assert.Equal(200, under.Status);
        Assert.Equal(prompt, Estimated(under));
        Assert.Equal(200, exact.Status);
        Assert.Equal(400, over.Status);
        Assert.Equal("context_length_exceeded", over.ErrorCode);
        Assert.Contains($"maximum context length is {limit} tokens", over.Body, StringComparison.Ordinal);
        Assert.Contains($"you requested about {limit + 1} tokens ({prompt} in the messages, {limit - prompt + 1} for the completion)", over.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Heuristic_FarFromEveryLimit_UsesTheCheapEstimate()
    {
        // Digits: the heuristic counts them in threes as o200k does, but a run of one repeated digit is where
        // an exact count differs; far from the limit the estimate stands, so the header shows the heuristic.
        const string body = """{"model":"m","prompt":"Hello there, this is a short prompt."}""";
        await using var far = await StartAsync("Heuristic", maxContext: 1_000_000);
        await using var near = await StartAsync("Heuristic", maxContext: 12);

        var farEcho = await far.PostAsync("/v1/completions", body);
        var nearEcho = await near.PostAsync("/v1/completions", body);

        Assert.Equal(ModelRouting.Inspection.HeuristicTokenCounter.Instance.CountTokens("Hello there, this is a short prompt."u8), Estimated(farEcho));
        Assert.Equal(Count("Hello there, this is a short prompt."), Estimated(nearEcho));
    }

    // A ruler of box drawing: the heuristic charges each character as a symbol, o200k merges the run (about 16
    // characters a token), so the estimate is far past the limit while the exact count is far under it.
    private static readonly string s_ruler = new('\u2500', 4000);

    private static string RulerBody(string? model) =>
        $$"""{{{(model is null ? "" : $"\"model\":\"{model}\",")}}"messages":[{"role":"user","content":"{{s_ruler}}"}]}""";

    [Fact]
    public async Task Heuristic_OverEstimatePastTheLimit_ExactCountFits_Returns200()
    {
        var exact = Count("user") + Count(s_ruler) + 3 + 3;
        var heuristic = ModelRouting.Inspection.HeuristicTokenCounter.Instance.CountTokens(System.Text.Encoding.UTF8.GetBytes(s_ruler));
        const int limit = 2000;
        Assert.True(exact < limit && heuristic > 2 * limit, $"exact {exact}, heuristic {heuristic}: the body no longer makes the case");
        await using var host = await StartAsync("Heuristic", maxContext: limit);

        var echo = await host.PostAsync("/v1/chat/completions", RulerBody("m"));

        Assert.Equal(200, echo.Status);
        Assert.Equal(exact, Estimated(echo));
    }

    [Fact]
    public async Task Heuristic_OverEstimatePastTheDefault_ExactCountFits_NoFallback()
    {
        var exact = Count("user") + Count(s_ruler) + 3 + 3;
        await using var host = await ModelRoutingTestHost.StartAsync(("small", "c1", 2000, true), ("large", "c2", 1_000_000, false));

        var echo = await host.PostAsync("/v1/chat/completions", RulerBody(null));

        Assert.Equal(200, echo.Status);
        Assert.Equal("c1", echo.Header("x-echo-cluster"));
        Assert.Null(echo.Header("x-gateway-fallback"));
        Assert.Equal(exact, Estimated(echo));
    }

    [Fact]
    public async Task Heuristic_ExactCountPastTheDefault_FallsBackOnTheExactCount()
    {
        var exact = Count("user") + Count(s_ruler) + 3 + 3;
        await using var host = await ModelRoutingTestHost.StartAsync(("small", "c1", exact - 1, true), ("large", "c2", 1_000_000, false));

        var echo = await host.PostAsync("/v1/chat/completions", RulerBody(null));

        Assert.Equal(200, echo.Status);
        Assert.Equal("c2", echo.Header("x-echo-cluster"));
        Assert.Equal("context", echo.Header("x-gateway-fallback"));
        Assert.Equal(exact, Estimated(echo));
    }

    [Fact]
    public async Task Heuristic_ExactCountPastTheNamedModel_RefusedWithTheExactCount()
    {
        var exact = Count("user") + Count(s_ruler) + 3 + 3;
        await using var host = await StartAsync("Heuristic", maxContext: (int)exact - 1);

        var echo = await host.PostAsync("/v1/chat/completions", RulerBody("m"));

        Assert.Equal(400, echo.Status);
        Assert.Equal("context_length_exceeded", echo.ErrorCode);
        Assert.Contains($"you requested about {exact} tokens", echo.Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.25)]
    public async Task Heuristic_AnyMargin_RefusalDecidedOnExactCount(double margin)
    {
        await using var host = await StartAsync("Heuristic", maxContext: 2000, margin: margin);

        var echo = await host.PostAsync("/v1/chat/completions", RulerBody("m"));

        Assert.Equal(200, echo.Status);
    }
}
