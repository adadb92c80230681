/* Placeholder until the agent lands: keeps the build rule honest. */
int main(void)
{
	return 0;
}
