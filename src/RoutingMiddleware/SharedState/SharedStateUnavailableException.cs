namespace ModelRouting.SharedState;

/// <summary>Redis (the shared state, SPEC §16) could not be written; the change that needed it was not applied.</summary>
internal sealed class SharedStateUnavailableException(string message, Exception? innerException = null)
    : Exception(message, innerException);
