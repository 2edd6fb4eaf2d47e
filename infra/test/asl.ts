import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';

// aws-local-stepfunctions needs Promise.withResolvers (Node 22); this is Node 20.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};

export const FAKE = { partition: 'aws', region: 'us-east-1', account: '123456789012' };

/** A fake ARN for a resource of the template; good enough for ASL (never called). */
function fakeArn(logicalId: string, type: string | undefined): string {
  const { region, account } = FAKE;
  switch (type) {
    case 'AWS::Lambda::Function': return `arn:aws:lambda:${region}:${account}:function:${logicalId}`;
    case 'AWS::StepFunctions::StateMachine': return `arn:aws:states:${region}:${account}:stateMachine:${logicalId}`;
    default: return `arn:aws:fake:${region}:${account}:${logicalId}`;
  }
}

/**
 * The ASL of a state machine in a synthesized template: its DefinitionString's
 * Fn::Join with every Ref/Fn::GetAtt replaced by a fake value, then parsed.
 */
export function aslFromTemplate(template: { Resources: Record<string, any> }, logicalId: string): StateMachineDefinition {
  const typeOf = (id: string) => template.Resources[id]?.Type as string | undefined;
  const resolve = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const token = part as Record<string, any>;
    if ('Ref' in token) {
      const pseudo: Record<string, string> = {
        'AWS::Partition': FAKE.partition, 'AWS::Region': FAKE.region, 'AWS::AccountId': FAKE.account,
      };
      return pseudo[token.Ref] ?? fakeArn(token.Ref, typeOf(token.Ref));
    }
    if ('Fn::GetAtt' in token) return fakeArn(token['Fn::GetAtt'][0], typeOf(token['Fn::GetAtt'][0]));
    if ('Fn::Join' in token) return token['Fn::Join'][1].map(resolve).join(token['Fn::Join'][0]);
    throw new Error(`cannot resolve ${JSON.stringify(part)} in a DefinitionString`);
  };
  const definition = template.Resources[logicalId]?.Properties?.DefinitionString;
  if (definition === undefined) throw new Error(`${logicalId} has no DefinitionString`);
  return JSON.parse(resolve(definition));
}

/** An error as a Lambda function's errorType reaches Step Functions. */
export function lambdaError(errorType: string, message: string): Error {
  const error = new Error(message);
  error.name = errorType;
  return error;
}

export interface Outcome {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  /** Names of the states entered, in order. */
  readonly path: string[];
}

export interface RunOptions {
  readonly handlers: Record<string, (input: any) => unknown>;
  /** Milliseconds to wait before each retry of a state (instead of IntervalSeconds/backoff). */
  readonly retryIntervals?: Record<string, number>;
  /** Milliseconds a Wait state pauses (instead of its Seconds). */
  readonly waits?: Record<string, number>;
}

/** Runs the ASL in-process, never calling AWS; a failed execution is an outcome, not a throw. */
export async function execute(definition: StateMachineDefinition, input: unknown, options: RunOptions): Promise<Outcome> {
  const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: options.handlers as never,
      retryIntervalOverrides: options.retryIntervals ?? {},
      waitTimeOverrides: options.waits ?? {},
    },
    // $$.Execution.StartTime is always the real start: the library ignores a given one.
  });
  const path: string[] = [];
  const logs = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') path.push(event.state.name);
    }
  })();
  try {
    const output = await execution.result;
    await logs;
    return { status: 'SUCCEEDED', output, path };
  } catch (e) {
    await logs.catch(() => undefined);
    const err = e as Error & { cause?: { name?: string; message?: string } };
    // ExecutionError wraps the state's error: its name is the ASL Error, message the Cause.
    return { status: 'FAILED', error: err.cause?.name ?? err.name, cause: err.cause?.message ?? err.message, path };
  }
}
