/**
 * The REPL's `help`, `help CMD` and `help @group`, laid out as redis-cli's.
 */
import {
  type CliCommand,
  COMMANDS,
  type CommandGroup,
  commandUsage,
  findCommand,
  GROUPS,
} from './commands.js';

function entry(c: CliCommand): string {
  return `\n  ${commandUsage(c)}\n  summary: ${c.summary}\n  group: ${c.group}\n`;
}

function overview(version: string): string {
  const lines = [
    `kv-cli ${version}`,
    'To get help about segkv commands type:',
    '      "help @<group>" to get a list of commands in <group>',
    '      "help <command>" for help on <command>',
    '      "help <tab>" to get a list of possible help topics',
    '      "quit" to exit',
    '',
    "Quoting is redis-cli's: \"double quotes\" with \\n \\t \\xHH escapes, 'single quotes' verbatim.",
    'TAB completes command names; the grey hint after the cursor shows the arguments.',
    '',
    'Commands:',
  ];
  for (const group of GROUPS) {
    const names = [...COMMANDS.values()].filter((c) => c.group === group).map((c) => c.name.toLowerCase());
    lines.push(`  @${group.padEnd(11)} ${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/** Help text for `help [topic]`: an overview, one command, or a group. */
export function helpText(topic: string | undefined, version: string): string {
  if (topic === undefined || topic === '') return overview(version);
  if (topic.startsWith('@')) {
    const group = topic.slice(1).toLowerCase() as CommandGroup;
    if (!GROUPS.includes(group)) {
      return `no such group ${topic}; groups: ${GROUPS.map((g) => `@${g}`).join(' ')}\n`;
    }
    return [...COMMANDS.values()]
      .filter((c) => c.group === group)
      .map(entry)
      .join('');
  }
  const c = findCommand(topic);
  if (!c) return `no such command '${topic}'; type "help" for the list\n`;
  return entry(c);
}
