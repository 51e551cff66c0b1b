// LocalStack starts DynamoDB Local with `-javaagent:ddb-local-loader-0.1.jar` and the JVM aborts
// if that jar is missing. LocalStack's own agent only lifts DynamoDB Local's 20-GSI limit, which
// no table of ours comes near, so install.sh builds this agent, which does nothing, in its place
// (instead of LocalStack downloading its own at run time).
import java.lang.instrument.Instrumentation;

public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {}
}
