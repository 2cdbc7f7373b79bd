using System.Text;
using System.Text.Json;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// Holds the gateway's own JSON scanner to System.Text.Json's verdicts: on thousands of mutated bodies, a body
/// is refused as invalid exactly when Utf8JsonReader (plus UTF-8 and escape decoding) refuses it, both see the
/// same top-level <c>model</c> (its value, absent, null, not a string, or given twice); and escapes never change
/// the estimate.
/// </summary>
public sealed class ParserDifferentialTests
{
    private static readonly string[] s_seeds =
    [
        """{"model":"m","messages":[{"role":"user","content":"hi\nthere \"q\" caf\u00e9 \ud83d\ude00"}],"max_tokens":12}""",
        """{"model":null,"prompt":[[1,2,3],[4]],"temperature":-1.5e-3,"stop":["\n","END"],"n":1,"logit_bias":{"50256":-100}}""",
        """ { "input" : [ "a" , "b\\c" ] , "model" : "org/emb:v1" , "dimensions" : 256, "x": [true,false,null,{}, []] } """,
        """{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"integer","minimum":0}}}}}],"messages":[]}""",
        """{"instructions":"Be terse.","input":[{"role":"user","content":[{"type":"input_text","text":"x\ty"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}]}""",
        """{"model":"a","model":"b","prompt":"twice"}""",
        """{"model":7,"input":"a number"}""",
        """{"mod\u0065l":"escaped key","messages":[{"role":"user","content":"x"}],"model_name":"not it"}""",
        """{"prompt":"no model here","metadata":{"model":"nested, not top-level"}}""",
        """{"model":"m","messages":[{"role":"system","content":"A long system prompt with \"quotes\", \\backslashes\\, a tab\t, unicode \u00e9 and \ud83d\ude00, repeated so it is long enough to be cached by the gateway: lorem ipsum dolor sit amet."},{"role":"user","content":"hi"}]}""",
    ];

    private static readonly byte[] s_interesting = "{}[]\",:\\/ubnrt0123456789-+.eE truefalsenull\u0001"u8.ToArray().Concat(new byte[] { 0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xFF, (byte)'\n' }).ToArray();

    [Fact]
    public void MutatedBodies_InvalidExactlyWhenSystemTextJsonSaysSo()
    {
        var random = new Random(12345);
        var cache = new TextCountCache(1024); // shared: long strings seen before take the cached path
        var disagreements = new List<string>();
        var checkedCount = 0;
        for (var n = 0; n < 20_000; n++)
        {
            var body = Mutate(Encoding.UTF8.GetBytes(s_seeds[n % s_seeds.Length]), random, 1 + random.Next(3));
            using var text = new PromptText();
            var parsed = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 100, text, n % 2 == 0 ? cache : null);
            if (parsed.Error is BodyError.NotAnObject or BodyError.ModelNotString or BodyError.DuplicateModel)
            {
                continue; // refused before reading the whole body: no verdict on the rest
            }

            checkedCount++;
            var oursValid = parsed.Error == BodyError.None;
            var referenceValid = IsValidBySystemTextJson(body, out var topIsObject);
            if (!topIsObject && referenceValid)
            {
                continue;
            }

            if (oursValid != referenceValid)
            {
                disagreements.Add($"{(oursValid ? "accepted" : "refused")}: {Encoding.UTF8.GetString(body)}");
            }
        }

        Assert.True(checkedCount > 5_000, $"only {checkedCount} bodies were compared");
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(10)));
    }

    [Fact]
    public void MutatedBodies_SameTopLevelModelAsSystemTextJson()
    {
        var random = new Random(54321);
        var cache = new TextCountCache(1024);
        var disagreements = new List<string>();
        var seen = new Dictionary<string, int>();
        for (var n = 0; n < 20_000; n++)
        {
            var body = Mutate(Encoding.UTF8.GetBytes(s_seeds[n % s_seeds.Length]), random, random.Next(3));
            var reference = ModelBySystemTextJson(body);
            if (reference is null)
            {
                continue; // not a valid JSON object: MutatedBodies_InvalidExactlyWhenSystemTextJsonSaysSo holds the verdict
            }

            using var text = new PromptText();
            var parsed = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 100, text, n % 2 == 0 ? cache : null);
            var ours = ModelByOurs(body, parsed);
            var kind = reference.Split(' ')[0];
            seen[kind] = seen.GetValueOrDefault(kind) + 1;
            if (ours != reference)
            {
                disagreements.Add($"ours {ours}, System.Text.Json {reference}: {Encoding.UTF8.GetString(body)}");
            }
        }

        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(10)));
        Assert.All(["value", "absent", "null", "not-a-string", "duplicate"], kind =>
            Assert.True(seen.GetValueOrDefault(kind) > 10, $"only {seen.GetValueOrDefault(kind)} bodies where model is {kind}"));
    }

    // The first top-level model decides, as the gateway's single pass does: not a string is refused where it
    // stands, and a second model key after a first string (or null) is a duplicate.
    private static string? ModelBySystemTextJson(byte[] body)
    {
        if (!IsValidBySystemTextJson(body, out var topIsObject) || !topIsObject)
        {
            return null;
        }

        using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 256 });
        var models = document.RootElement.EnumerateObject().Where(p => p.Name == "model").Select(p => p.Value).ToList();
        return models switch
        {
            [] => "absent",
            [{ ValueKind: not (JsonValueKind.String or JsonValueKind.Null) }, ..] => "not-a-string",
            [_, _, ..] => "duplicate",
            [{ ValueKind: JsonValueKind.Null }] => "null",
            [var model] => "value " + model.GetString(),
        };
    }

    private static string ModelByOurs(byte[] body, in ParsedRequest parsed)
    {
        switch (parsed.Error)
        {
            case BodyError.DuplicateModel:
                return "duplicate";
            case BodyError.ModelNotString:
                return "not-a-string";
            case BodyError.None when !parsed.HasModelToken:
                return "absent";
            case BodyError.None when !parsed.ModelIsString:
                return "null";
            case BodyError.None:
                var name = new char[parsed.ModelTokenEnd - parsed.ModelTokenStart];
                return "value " + new string(name, 0, OpenAIRequestParser.GetModelName(body, parsed, name));
            default:
                return $"refused ({parsed.Error}: {parsed.ErrorDetail})";
        }
    }

    [Fact]
    public void CorpusTexts_AsJsonStrings_EstimateEqualsThePlainText()
    {
        foreach (var document in TokenCorpus.Documents)
        {
            var text = Encoding.UTF8.GetString(document.Utf8);
            var body = JsonSerializer.SerializeToUtf8Bytes(new { prompt = text }); // escapes quotes, controls, non-ASCII as \uXXXX
            using var ranges = new PromptText();

            var parsed = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, ranges, new TextCountCache(64));

            Assert.Equal(BodyError.None, parsed.Error);
            Assert.Equal(HeuristicTokenCounter.Instance.CountTokens(document.Utf8), parsed.TextTokens);
        }
    }

    [Fact]
    public void Cache_RepeatedTextsGiveTheSameCount()
    {
        var cache = new TextCountCache(16);
        var body = Encoding.UTF8.GetBytes($$"""{"messages":[{"role":"system","content":"{{new string('x', 300)}} words \n and more"}]}""");
        using var first = new PromptText();
        using var second = new PromptText();

        var cold = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, first, cache);
        var warm = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, second, cache);

        Assert.Equal(cold.TextTokens, warm.TextTokens);
        Assert.Equal(16, cache.Capacity);
    }

    private static byte[] Mutate(byte[] body, Random random, int edits)
    {
        var list = body.ToList();
        for (var e = 0; e < edits && list.Count > 1; e++)
        {
            var at = random.Next(list.Count);
            switch (random.Next(3))
            {
                case 0:
                    list.RemoveAt(at);
                    break;
                case 1:
                    list.Insert(at, s_interesting[random.Next(s_interesting.Length)]);
                    break;
                default:
                    list[at] = s_interesting[random.Next(s_interesting.Length)];
                    break;
            }
        }

        return [.. list];
    }

    private static bool IsValidBySystemTextJson(byte[] body, out bool topIsObject)
    {
        topIsObject = false;
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
            var first = true;
            while (reader.Read())
            {
                if (first)
                {
                    topIsObject = reader.TokenType == JsonTokenType.StartObject;
                    first = false;
                }

                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName)
                {
                    _ = reader.GetString(); // throws for escapes that are not valid text (lone surrogates)
                }
            }

            return !first;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
