namespace ModelRouting.Configuration;

/// <summary>How a decision's prompt tokens are counted (SPEC §6, §18): the names <c>TokenEstimation:Mode</c> accepts.</summary>
internal enum TokenEstimationMode
{
    /// <summary>Estimated from character classes; near a limit, and for a refusal or a fallback, counted with the local tokenizer.</summary>
    Heuristic,

    /// <summary>Counted exactly with the local tokenizer (a tiktoken encoding).</summary>
    Tiktoken,

    /// <summary>Estimated like <see cref="Heuristic"/>; near a limit the endpoint's serving engine counts (<c>POST /tokenize</c>).</summary>
    Backend,
}

/// <summary>Parses <see cref="TokenEstimationMode"/> names.</summary>
internal static class TokenEstimationModes
{
    /// <summary>The accepted names, for error messages.</summary>
    public const string Names = "Heuristic, Tiktoken, Backend";

    /// <summary>Parses a mode name, ignoring case; numbers are not names.</summary>
    public static bool TryParse(string? name, out TokenEstimationMode mode)
    {
        if (string.Equals(name, "Heuristic", StringComparison.OrdinalIgnoreCase))
        {
            mode = TokenEstimationMode.Heuristic;
            return true;
        }

        if (string.Equals(name, "Tiktoken", StringComparison.OrdinalIgnoreCase))
        {
            mode = TokenEstimationMode.Tiktoken;
            return true;
        }

        if (string.Equals(name, "Backend", StringComparison.OrdinalIgnoreCase))
        {
            mode = TokenEstimationMode.Backend;
            return true;
        }

        mode = TokenEstimationMode.Heuristic;
        return false;
    }

    /// <summary>Gets the global mode of validated settings (an unknown name, which validation refuses, reads as Heuristic).</summary>
    public static TokenEstimationMode Of(TokenEstimationOptions settings) => TryParse(settings.Mode, out var mode) ? mode : TokenEstimationMode.Heuristic;
}
