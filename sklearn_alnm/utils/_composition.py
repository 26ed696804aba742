"""Estimators made of named members (``[(name, estimator), ...]``), as scikit-learn's own."""

from typing import Any, Self

from sklearn.utils.metaestimators import _BaseComposition


class NamedMembersMixin(_BaseComposition):
    """``get_params`` / ``set_params`` reaching the members of a list of ``(name, estimator)``.

    The attribute holding the list is named by ``_members_attr``; members' parameters read and
    set as ``<name>__<param>``, a whole member replaced as ``<name>``
    (:class:`sklearn.ensemble.StackingClassifier`'s convention).
    """

    #: Name of the parameter holding the ``(name, estimator)`` list.
    _members_attr = "estimators"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of the estimator, and with ``deep`` those of its named members.

        Parameters
        ----------
        deep : bool, default=True
            Also return ``<name>__<param>`` for every named member.

        Returns
        -------
        dict
        """
        return self._get_params(self._members_attr, deep=deep)

    def set_params(self, **params: Any) -> Self:
        """Set parameters of the estimator or of its members (``<name>__<param>``).

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self
        """
        self._set_params(self._members_attr, **params)
        return self
